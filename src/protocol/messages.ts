// Every frame that crosses the socket: a constant, a type and a guard per message, shared by dw and
// dwd. Requests carry an id; the daemon answers with zero or more `event` frames and exactly one
// `result` or `error` frame with the same id.
import type { SessionOptionsSpec } from '../workflow/plan.js';
import type { ErrorPayload } from './errors.js';
import { MAX_DURATION_MS } from './units.js';

export type RequestId = string | number;

export const REQUEST_TYPES = ['hello', 'run', 'validate', 'status', 'stop', 'cancel', 'memory', 'clear', 'offer', 'put', 'cache'] as const;
export type RequestType = (typeof REQUEST_TYPES)[number];

export interface HelloRequest {
  id: RequestId;
  type: 'hello';
  protocol: number;
  version: string;
  client?: string;
}
export interface RunRequest {
  id: RequestId;
  type: 'run';
  /** Absolute path of the workflow file. */
  workflow: string;
  /** --arg values as typed on the command line; the daemon coerces them to the declared types. */
  args: Record<string, string>;
  /** The client's working directory: relative --arg paths resolve against it. */
  cwd: string;
  timeout_ms?: number;
  /** How long this run's models stay loaded when idle; -1 pins them, 0 unloads them after the run. */
  keep_alive_ms?: number;
  /**
   * The client's files travel by content: the daemon opens none of the paths it names (workflow,
   * sub-workflows, plugins, inputs) but asks for each with a `need` event. Model paths still
   * resolve on the daemon's host.
   */
  by_content?: boolean;
  /** Run every step, none from the step cache, and store their results anew (dw run --no-cache). */
  no_cache?: boolean;
}
export interface ValidateRequest {
  id: RequestId;
  type: 'validate';
  workflow: string;
  args?: Record<string, string>;
  cwd?: string;
  by_content?: boolean;
}
export interface StatusRequest {
  id: RequestId;
  type: 'status';
}
export interface StopRequest {
  id: RequestId;
  type: 'stop';
}
export interface CancelRequest {
  id: RequestId;
  type: 'cancel';
  target: RequestId;
}
export interface MemoryRequest {
  id: RequestId;
  type: 'memory';
}
/** Without a path: replace the runner (all memory back). With one: the sessions of that model file, or of every model of that workflow file. */
export interface ClearRequest {
  id: RequestId;
  type: 'clear';
  path?: string;
  cwd?: string;
  no_wait?: boolean;
}

/**
 * The answer to a `need` event of run or validate `target`: the file's sha256 and size, or why the
 * client cannot send it. The result says whether the daemon already holds those bytes.
 */
export interface OfferRequest {
  id: RequestId;
  type: 'offer';
  target: RequestId;
  path: string;
  sha256?: string;
  size?: number;
  /** Why the client cannot read the file (ENOENT, a directory…). */
  error?: string;
}
/**
 * A piece of an offered file the daemon lacks, at `offset`; pieces may be in flight together. With
 * `error` instead of data: the client cannot send the rest (the file changed or went away).
 */
export interface PutRequest {
  id: RequestId;
  type: 'put';
  target: RequestId;
  sha256: string;
  offset: number;
  data_base64?: string;
  error?: string;
}

/** The step cache: what it holds; with `clear`, emptied first. */
export interface CacheRequest {
  id: RequestId;
  type: 'cache';
  clear?: boolean;
}

export type Request =
  | HelloRequest
  | CacheRequest
  | OfferRequest
  | PutRequest
  | RunRequest
  | ValidateRequest
  | StatusRequest
  | StopRequest
  | CancelRequest
  | MemoryRequest
  | ClearRequest;

// ---- events -------------------------------------------------------------------------------

export type RunEvent =
  /** The daemon is working on the request: sent every second, so a client can tell a frozen daemon from a long run. */
  | { kind: 'alive' }
  | { kind: 'queued'; position: number }
  | { kind: 'started' }
  /** `cache: 'hit'`: served from the step cache; `saved_ms`, what running it took when it ran. */
  | { kind: 'step'; step: string; state: 'start' | 'done'; ms?: number; cache?: 'hit'; saved_ms?: number }
  /** `cost_bytes` (loaded): the runner's RSS growth across the load. `invalidated`: why the model is loaded again. */
  | {
      kind: 'cache';
      step: string;
      role: string;
      path: string;
      status: 'hit' | 'loaded' | 'invalidated';
      provider?: string;
      load_ms?: number;
      cost_bytes?: number;
      reason?: string;
    }
  | { kind: 'progress'; step: string; done: number; total: number; unit: string }
  | { kind: 'log'; level: 'info' | 'warn'; message: string }
  /** A run by content needs this file of the client's (absolute, as the client would open it): answer with `offer`. */
  | { kind: 'need'; path: string; what: string }
  /** The runner died under the run (not because of it, as far as dwd knows): it runs again from the start; outputs so far are void. */
  | { kind: 'retry'; reason: string }
  /**
   * A piece of saved output `index` (its place in the result's `outputs`), in order. Outputs travel
   * in pieces ahead of the result, so their size is not bound by one frame.
   */
  | { kind: 'output'; index: number; data_base64: string };

// ---- results ------------------------------------------------------------------------------

export interface HelloResult {
  protocol: number;
  version: string;
  pid: number;
  autostarted: boolean;
  /** The daemon's default run deadline (dwd --timeout): with its margin, how long dw waits for a started run. */
  timeout_ms: number;
  /** Who and where the daemon is: a client of another user or host sends its files by content. */
  uid: number;
  host: string;
  /** The socket it listens on, as a path on its host. */
  socket: string;
  /** Its pid namespace: in another one (a container sharing the socket's folder) its pid means another process. */
  pid_ns?: string;
  /** The largest total of inputs one run may send by content (dwd --input-store). */
  input_store_bytes: number;
  /** The largest request frame it reads: pieces of files sent by content are cut to fit. */
  max_request_bytes: number;
}

export interface ModelUse {
  step: string;
  role: string;
  path: string;
  /** sha256 of the file + session options: two workflows with the same key share one session. */
  key: string;
  provider: string;
  cache: 'hit' | 'loaded';
  load_ms: number;
  /** On a load: the runner's RSS growth across it, what the session costs in memory. */
  cost_bytes?: number;
}

export interface RunOutput {
  step: string;
  /** File name suggested by the workflow, relative: the client places it under --output-dir. */
  name: string;
  content_type: string;
  /** Its size; the bytes came before the result in `output` events. */
  bytes: number;
}

export interface StepTiming {
  name: string;
  /** `hit`: from the step cache; `miss`: run and stored; `off`: run, not cached (--no-cache stores anew: miss). */
  cache: 'hit' | 'miss' | 'off';
  ms: number;
  /** A hit: what running it took when it ran. */
  saved_ms?: number;
}

export interface RunResult {
  ok: true;
  workflow: { id: string; path: string };
  results: Record<string, unknown>;
  models: ModelUse[];
  outputs: RunOutput[];
  steps: StepTiming[];
  timings: { total_ms: number; queue_ms: number; load_ms: number; run_ms: number };
}

export interface ValidateResult {
  ok: true;
  workflow: { id: string; path: string };
  steps: Array<{ name: string; kind: 'pipeline' | 'task' | 'workflow'; type: string }>;
  variables: Record<string, unknown>;
  models: Array<{ step: string; role: string; path: string }>;
}

export interface RunnerStatus {
  index: number;
  /** `cpu` or `cuda:N`. */
  device: string;
  pid: number | null;
  state: 'starting' | 'ready' | 'restarting' | 'stopped';
  restarts: number;
  last_exit: string | null;
  /** Crashes in a row, each within 30 s of its start: the backoff grows with it. */
  crash_streak: number;
  /** While restarting with backoff: when the next runner starts. */
  next_start_in_ms: number | null;
  /** Stopped by a signal (SIGSTOP): alive, but it runs nothing until resumed. */
  frozen: boolean;
  /** Runs on it now, and runs waiting for it (their models are loaded there). */
  runs_active: number;
  runs_queued: number;
  /** Models loaded in it. */
  models: number;
  /** `lowered` while its run has gone on longer than another runner's (cpu-priority.ts); `off` where dwd may not raise it back. */
  cpu_priority: 'normal' | 'lowered' | 'off';
}

export interface StatusResult {
  pid: number;
  version: string;
  protocol: number;
  uptime_s: number;
  /** The daemon's host name, and its socket as a path there. */
  host: string;
  socket: string;
  runs_total: number;
  runs_active: number;
  runs_queued: number;
  /** Every runner of the pool, by index. */
  runners: RunnerStatus[];
  models_loaded: number;
  /** The step cache: its size and bound (0: none). */
  cache: { bytes: number; entries: number; max_bytes: number };
  /**
   * Where dwd's log goes (a file's path, an autostarted dwd's dwd.log; or systemd's journal; or
   * neither: a terminal, a pipe), and the lines it could not write (a full disk) with why; null for
   * a daemon built without its log sink (tests).
   */
  log: { file: string | null; journal: boolean; dropped: number; last_error: string | null } | null;
  settings: Record<string, unknown>;
}

export interface GpuInfo {
  name: string;
  memory_total: number | null;
  memory_used: number | null;
  memory_free: number | null;
  processes: Array<{ pid: number; used_memory: number }>;
}

export interface ModelInfo {
  path: string;
  key: string;
  role: string;
  provider: string;
  /** The session options it was built with (two sessions of one file differ here); null if not known yet. */
  options: SessionOptionsSpec | null;
  size_bytes: number;
  /** Runner RSS growth measured across the load. */
  cost_bytes: number;
  load_ms: number;
  uses: number;
  loaded_at: number;
  last_used: number;
  /** -1: pinned. */
  keep_alive_ms: number;
  /** When its keep-alive unloads it (ms since epoch); null while in use or pinned. */
  expires_at: number | null;
  in_use: boolean;
  workflows: string[];
}

export interface MemoryResult {
  daemon: { pid: number; version: string; rss: number; uptime_s: number };
  host: { total_mem: number; available_mem: number; cpus: number; cpu: string };
  /**
   * `used_bytes`: what the loaded models cost (measured at their loads); `runner_bytes`: what the
   * runner really holds beyond a fresh runner, models and the working memory of runs included.
   */
  budget: { max_bytes: number | null; used_bytes: number; runner_bytes: number | null };
  runners: Array<{
    pid: number | null;
    index: number;
    state: RunnerStatus['state'];
    /** Stopped by a signal (SIGSTOP): not asked for its memory, it runs nothing until resumed. */
    frozen: boolean;
    device: string;
    /** Runs on it now, and runs waiting for it (their models are loaded there). */
    runs_active: number;
    runs_queued: number;
    rss: number | null;
    /** Its RSS when it started, before any model. */
    fresh_rss: number | null;
    growth: { baseline_rss: number; latest_rss: number; warn_bytes: number; warning: string | null } | null;
    models: ModelInfo[];
  }>;
  gpus: GpuInfo[];
  gpu_note: string | null;
  evictions: Array<{ at: number; key: string; path: string; reason: string; cost_bytes: number }>;
  runs_total: number;
  /** The step cache on disk (not memory, shown beside it): its size and bound (0: none). */
  cache: { bytes: number; entries: number; max_bytes: number };
}

export interface ClearResult {
  scope: 'all' | 'path';
  released: Array<{ key: string; path: string }>;
  rss_before: number | null;
  rss_after: number | null;
  freed_bytes: number | null;
}

export interface ResultMap {
  hello: HelloResult;
  run: RunResult;
  validate: ValidateResult;
  status: StatusResult;
  /** `grace_ms`: how long runs in flight may still take (dwd --grace). */
  stop: { stopping: true; pid: number; grace_ms: number };
  cancel: { cancelled: boolean };
  memory: MemoryResult;
  clear: ClearResult;
  offer: { have: boolean };
  put: { received: number };
  cache: CacheResult;
}

/** The step cache's folder, bound and content; hits and misses of steps since the daemon started. */
export interface CacheResult {
  dir: string;
  /** 0: the daemon keeps no step cache (dwd --cache-size 0). */
  max_bytes: number;
  bytes: number;
  entries: number;
  hits: number;
  misses: number;
  cleared?: { entries: number; bytes: number };
}

// ---- frames -------------------------------------------------------------------------------

export interface EventFrame {
  id: RequestId;
  type: 'event';
  event: RunEvent;
}
export interface ResultFrame<T = unknown> {
  id: RequestId;
  type: 'result';
  result: T;
}
export interface ErrorFrame {
  id: RequestId | null;
  type: 'error';
  error: ErrorPayload;
}
export type ServerFrame = EventFrame | ResultFrame | ErrorFrame;

// ---- guards -------------------------------------------------------------------------------

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
function isId(x: unknown): x is RequestId {
  return (typeof x === 'string' && x.length > 0 && x.length <= 128) || (typeof x === 'number' && Number.isSafeInteger(x));
}
const SHA256 = /^[0-9a-f]{64}$/;
const byContent = (f: Record<string, unknown>) =>
  f.by_content !== undefined && typeof f.by_content !== 'boolean' ? '"by_content" must be a boolean' : null;

function isStringMap(x: unknown): x is Record<string, string> {
  return isRecord(x) && Object.values(x).every((v) => typeof v === 'string');
}

/** Why a frame is not a valid request, or null when it is. Checked before any handler sees it. */
const REQUEST_CHECKS: Record<RequestType, (f: Record<string, unknown>) => string | null> = {
  hello: (f) =>
    typeof f.protocol === 'number' && typeof f.version === 'string' ? null : 'hello needs numeric "protocol" and string "version"',
  run: (f) =>
    typeof f.workflow !== 'string'
      ? 'run needs a string "workflow" path'
      : !isStringMap(f.args)
        ? 'run needs "args" as an object of strings'
        : typeof f.cwd !== 'string'
          ? 'run needs a string "cwd"'
          : f.timeout_ms !== undefined && !(typeof f.timeout_ms === 'number' && f.timeout_ms > 0 && f.timeout_ms <= MAX_DURATION_MS)
            ? `"timeout_ms" must be a positive number up to ${MAX_DURATION_MS}`
            : f.keep_alive_ms !== undefined &&
                !(typeof f.keep_alive_ms === 'number' && f.keep_alive_ms >= -1 && f.keep_alive_ms <= MAX_DURATION_MS)
              ? `"keep_alive_ms" must be -1, 0 or a positive number up to ${MAX_DURATION_MS}`
              : f.no_cache !== undefined && typeof f.no_cache !== 'boolean'
                ? '"no_cache" must be a boolean'
                : byContent(f),
  validate: (f) =>
    typeof f.workflow !== 'string'
      ? 'validate needs a string "workflow" path'
      : f.args !== undefined && !isStringMap(f.args)
        ? '"args" must be an object of strings'
        : byContent(f),
  status: () => null,
  stop: () => null,
  cancel: (f) => (isId(f.target) ? null : 'cancel needs a "target" request id'),
  memory: () => null,
  clear: (f) =>
    f.path !== undefined && typeof f.path !== 'string'
      ? '"path" must be a string'
      : f.cwd !== undefined && typeof f.cwd !== 'string'
        ? '"cwd" must be a string'
        : f.no_wait !== undefined && typeof f.no_wait !== 'boolean'
          ? '"no_wait" must be a boolean'
          : null,
  cache: (f) => (f.clear !== undefined && typeof f.clear !== 'boolean' ? '"clear" must be a boolean' : null),
  offer: (f) =>
    !isId(f.target) || typeof f.path !== 'string'
      ? 'offer needs a "target" request id and a string "path"'
      : f.error !== undefined
        ? typeof f.error === 'string'
          ? null
          : '"error" must be a string'
        : typeof f.sha256 !== 'string' || !SHA256.test(f.sha256)
          ? 'offer needs "sha256" as 64 lower-case hex digits (or an "error")'
          : typeof f.size !== 'number' || !Number.isSafeInteger(f.size) || f.size < 0
            ? 'offer needs "size" as a whole number of bytes'
            : null,
  put: (f) =>
    !isId(f.target) || typeof f.sha256 !== 'string' || !SHA256.test(f.sha256)
      ? 'put needs a "target" request id and "sha256" as 64 lower-case hex digits'
      : typeof f.offset !== 'number' || !Number.isSafeInteger(f.offset) || f.offset < 0
        ? 'put needs "offset" as a whole number of bytes'
        : typeof f.data_base64 !== 'string' && typeof f.error !== 'string'
          ? 'put needs "data_base64" (or an "error")'
          : null,
};

export function checkRequest(frame: unknown): { ok: true; request: Request } | { ok: false; id: RequestId | null; reason: string } {
  if (!isRecord(frame)) return { ok: false, id: null, reason: 'a frame must be a JSON object' };
  const id = isId(frame.id) ? frame.id : null;
  if (id === null) return { ok: false, id: null, reason: 'a request needs an "id" (string or integer)' };
  const type = frame.type;
  if (typeof type !== 'string' || !(REQUEST_TYPES as readonly string[]).includes(type)) {
    return { ok: false, id, reason: `unknown request type ${JSON.stringify(type)}; expected one of ${REQUEST_TYPES.join(', ')}` };
  }
  const why = REQUEST_CHECKS[type as RequestType](frame);
  return why ? { ok: false, id, reason: why } : { ok: true, request: frame as unknown as Request };
}

export function isServerFrame(x: unknown): x is ServerFrame {
  if (!isRecord(x)) return false;
  if (x.type === 'event') return isId(x.id) && isRecord(x.event);
  if (x.type === 'result') return isId(x.id) && 'result' in x;
  if (x.type === 'error') return (x.id === null || isId(x.id)) && isRecord(x.error) && typeof x.error.code === 'string';
  return false;
}
