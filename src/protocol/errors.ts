// Every failure a user can see has a stable code. The table below is the single source for the
// code, the CLI exit code and the one-line meaning printed in the README (test/errors.test.ts keeps
// README, table and CLI in step).

export const EXIT = {
  OK: 0,
  RUN_FAILED: 1,
  USAGE: 2,
  INVALID: 3,
  DAEMON: 4,
  TIMEOUT: 5,
  RESOURCES: 6,
  INTERRUPTED: 130,
} as const;

export const ERROR_CODES = {
  DW_ERR_USAGE: { exit: EXIT.USAGE, doc: 'bad command line: unknown command, flag or missing argument' },
  DW_ERR_WORKFLOW_INVALID: { exit: EXIT.INVALID, doc: 'the workflow file is not valid JSON or does not match the schema' },
  DW_ERR_UNKNOWN_VARIABLE: { exit: EXIT.INVALID, doc: 'an --arg or variable: reference names a variable the workflow does not declare' },
  DW_ERR_BAD_REFERENCE: { exit: EXIT.INVALID, doc: 'a previous_result: reference names a step that has not run or a field it lacks' },
  DW_ERR_FILE_NOT_FOUND: { exit: EXIT.INVALID, doc: 'a workflow or input file does not exist or cannot be read' },
  DW_ERR_MODEL_NOT_FOUND: { exit: EXIT.INVALID, doc: 'a model file (path or npm: package path) does not exist' },
  DW_ERR_BAD_ARGUMENT: { exit: EXIT.INVALID, doc: 'a pipeline argument has the wrong type or value' },
  DW_ERR_PLUGIN: { exit: EXIT.INVALID, doc: 'a plugin pipeline module could not be imported or does not export a pipeline' },
  DW_ERR_CONTENT_MISMATCH: { exit: EXIT.INVALID, doc: 'file bytes sent by content do not match the sha256 or size they were offered with' },
  DW_ERR_INPUT_TOO_LARGE: {
    exit: EXIT.RESOURCES,
    doc: "a run's files sent by content exceed the daemon's input store (dwd --input-store)",
  },
  DW_ERR_PATH_FORBIDDEN: { exit: EXIT.INVALID, doc: "a workflow, model or input path lies outside the daemon's --allowed-roots" },
  DW_ERR_MODEL_LOAD: { exit: EXIT.RUN_FAILED, doc: 'onnxruntime could not load the model with any listed provider' },
  DW_ERR_RUN_FAILED: { exit: EXIT.RUN_FAILED, doc: 'a pipeline step failed while running' },
  DW_ERR_OUTPUT: { exit: EXIT.RUN_FAILED, doc: 'an output file could not be written' },
  DW_ERR_RESULT_TOO_LARGE: {
    exit: EXIT.RUN_FAILED,
    doc: 'a step result is too large to send back (16 MiB, or less with dwd --max-frame); save it to a file with result.save',
  },
  DW_ERR_RUNNER_CRASHED: { exit: EXIT.RUN_FAILED, doc: 'the runner process died during the run; it is restarted automatically' },
  DW_ERR_INTERNAL: { exit: EXIT.RUN_FAILED, doc: 'a bug in dw or dwd; the message has the details' },
  DW_ERR_DAEMON_UNREACHABLE: { exit: EXIT.DAEMON, doc: 'no daemon answers on the socket and autostart is off or failed' },
  DW_ERR_VERSION_MISMATCH: { exit: EXIT.DAEMON, doc: 'the running daemon speaks another protocol or package version' },
  DW_ERR_PROTOCOL: { exit: EXIT.DAEMON, doc: 'a malformed, oversized or unexpected frame on the socket' },
  DW_ERR_SHUTTING_DOWN: { exit: EXIT.DAEMON, doc: 'the daemon is stopping and takes no new runs' },
  DW_ERR_TIMEOUT: { exit: EXIT.TIMEOUT, doc: 'the run exceeded its deadline (--timeout) and was cancelled' },
  DW_ERR_NO_MEMORY: {
    exit: EXIT.RESOURCES,
    doc: 'the models would not fit under the memory budget (dwd --max-memory) even after evicting idle ones',
  },
  DW_ERR_MODEL_IN_USE: { exit: EXIT.RESOURCES, doc: 'dw clear --no-wait named a model that a run is using' },
  DW_ERR_BUSY: { exit: EXIT.RESOURCES, doc: 'the daemon queue is full (dwd --max-queue); try again later' },
  DW_ERR_CANCELLED: { exit: EXIT.INTERRUPTED, doc: 'the run was cancelled (Ctrl-C, or the client went away)' },
} as const satisfies Record<string, { exit: number; doc: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorPayload {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export class DwError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'DwError';
    this.code = code;
    this.details = details;
  }
  toPayload(): ErrorPayload {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message };
  }
  static fromPayload(p: ErrorPayload): DwError {
    return new DwError(isErrorCode(p.code) ? p.code : 'DW_ERR_INTERNAL', p.message, p.details);
  }
}

export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === 'string' && Object.hasOwn(ERROR_CODES, x);
}

export function exitCodeFor(code: ErrorCode): number {
  return ERROR_CODES[code].exit;
}

/** Any thrown value as a payload; unknown errors become DW_ERR_INTERNAL with their message kept. */
export function toErrorPayload(err: unknown, fallback: ErrorCode = 'DW_ERR_INTERNAL'): ErrorPayload {
  if (err instanceof DwError) return err.toPayload();
  const message = err instanceof Error ? err.message : String(err);
  return { code: fallback, message };
}
