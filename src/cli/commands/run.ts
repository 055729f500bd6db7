import { constants } from 'node:os';
import { resolve } from 'node:path';
import { currentDir, workflowPath } from '../workflow-path.js';
import { DwError, EXIT, toErrorPayload } from '../../protocol/errors.js';
import type { RunEvent, RunResult } from '../../protocol/messages.js';
import { parseDuration, parseKeepAlive } from '../../protocol/units.js';
import { connect, filesAnswer } from '../autostart.js';
import type { Command } from '../command.js';
import { OutputFiles } from '../output.js';
import { createProgress } from '../progress.js';
import { renderResults } from '../results.js';
import type { Sent } from '../send-files.js';

function parseArgPairs(raw: string[]): Record<string, string> {
  // No prototype: `--arg __proto__=1` is a name like any other (dwd then says it is not declared).
  const args: Record<string, string> = Object.create(null);
  for (const pair of raw) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new DwError('DW_ERR_USAGE', `--arg "${pair}" is not of the form NAME=VALUE`);
    args[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return args;
}

/**
 * Past a started run's deadline, how long dw waits for dwd to end it: dwd cancels the run, gives it
 * 2 s to yield and then kills its runner, so an answer comes well within this.
 */
const RUN_DEADLINE_MARGIN_MS = 10_000;

export const run: Command = {
  name: 'run',
  summary: 'run a workflow file on the daemon (starting it if needed)',
  help: `Usage: dw run FILE [--arg NAME=VALUE]... [options]

Runs the workflow FILE on dwd, which keeps its models loaded between runs: the first run
loads them, later runs (from any shell) reuse them. A step whose type, models and arguments
(input files by content) are those of an earlier run is not run again: its result comes from
the step cache ("read: cached (saved 412 ms)"; dw cache shows it, --no-cache skips it).

Options:
  -a, --arg NAME=VALUE   set a workflow variable (repeatable); relative paths are relative
                         to the current directory; unknown names are an error
  -o, --output-dir DIR   where saved outputs go (default: the current directory)
      --json             print one JSON object with results, models, timings, outputs and
                         steps (each step's time, and "cache": hit, miss or off)
                         (and "sent": files sent by content, when they travel so)
      --timeout S        deadline for this run: seconds, or 90s, 5m… (default: the daemon's, 300 s)
      --keep-alive D     keep this run's models loaded D after it (5m, 1h…; -1: until cleared;
                         0: unload right after; default: the daemon's, 30 min)
      --no-cache         run every step, none from the step cache, and store their results anew
  -q, --quiet            no progress on stderr
  -h, --help             show this help

Progress goes to stderr (a live line on a terminal). stdout gets the last step's text
(e.g. what OCR read), or else one line per step; --json gives every result in full.
With DW_HOST=ssh://host (or dw --host URL run …) the run happens on that host's daemon: dw
sends the workflow, its sub-workflows, plugins and input files by content (only what the
daemon lacks) and writes saved outputs here. Models are paths on the daemon's host.
Ctrl-C cancels the run in the daemon; a second Ctrl-C exits at once. dw waits for the
daemon at most DW_CONNECT_TIMEOUT (5 s) between its messages, and for a started run its
deadline plus 10 s, then fails with exit code 4.

Examples:
  dw run workflows/ocr.json
  dw run workflows/ocr.json --arg image=workflows/samples/label.png --json > label.json
  ls *.png | xargs -P4 -I{} dw run ocr.json --arg image={} -o out/`,
  positionals: 1,
  completes: 'workflow',
  options: {
    arg: { type: 'string', short: 'a', multiple: true },
    'output-dir': { type: 'string', short: 'o' },
    json: { type: 'boolean' },
    timeout: { type: 'string' },
    'keep-alive': { type: 'string' },
    quiet: { type: 'boolean', short: 'q' },
    'no-cache': { type: 'boolean' },
  },
  async run(values, positionals) {
    if (positionals.length !== 1)
      throw new DwError('DW_ERR_USAGE', `dw run takes one workflow file, got ${positionals.length}; see dw run --help`);
    const cwd = currentDir();
    const workflow = workflowPath(positionals[0]!);
    const json = values.json === true;
    const args = parseArgPairs((values.arg as string[] | undefined) ?? []);
    const timeout_ms = typeof values.timeout === 'string' ? parseDuration(values.timeout, '--timeout') : undefined;
    const keep_alive_ms = typeof values['keep-alive'] === 'string' ? parseKeepAlive(values['keep-alive'], '--keep-alive') : undefined;
    if (values['output-dir'] === '') throw new DwError('DW_ERR_USAGE', '--output-dir is empty; give a folder (. for the current one)');
    const outDir = resolve(cwd, typeof values['output-dir'] === 'string' ? values['output-dir'] : '.');
    const progress = createProgress(process.stderr, values.quiet === true);
    const { client, byContent } = await connect({ start: true, notify: (line) => progress.note(line) });

    const files = new OutputFiles(outDir);
    const sent: Sent = { files: 0, uploaded_files: 0, uploaded_bytes: 0 };
    const onEvent = (e: RunEvent) => {
      if (e.kind === 'output') return files.piece(e.index, e.data_base64);
      // A run started again from scratch sends its outputs again: what came before is void.
      if (e.kind === 'retry') files.discard();
      // The run's deadline counts from its start, as dwd's does (not while it waits in the queue).
      if (e.kind === 'started') client.setDeadline(req.id, (timeout_ms ?? client.hello.timeout_ms) + RUN_DEADLINE_MARGIN_MS);
      progress.event(e);
    };
    const req = client.send(
      'run',
      {
        workflow,
        args,
        cwd,
        ...(timeout_ms ? { timeout_ms } : {}),
        ...(keep_alive_ms !== undefined ? { keep_alive_ms } : {}),
        ...(byContent ? { by_content: true } : {}),
        ...(values['no-cache'] === true ? { no_cache: true } : {}),
      },
      byContent
        ? await filesAnswer(
            client,
            (): number => req.id,
            (line) => progress.note(line),
            { workflow, args, cwd },
            onEvent,
            sent,
          )
        : onEvent,
    );
    let interrupts = 0;
    const onSigint = () => {
      if (++interrupts > 1) {
        progress.done();
        process.exit(EXIT.INTERRUPTED);
      }
      progress.note('dw: cancelling the run (Ctrl-C again to quit at once)');
      client.send('cancel', { target: req.id }).done.catch(() => {});
    };
    // However dw ends before the result (an exception, a closed pipe, a signal), no temporary
    // output file stays behind; the daemon cancels the run of a client that went away.
    const discard = () => files.discard();
    const onTerm = (signal: NodeJS.Signals) => process.exit(128 + constants.signals[signal]);
    process.on('SIGINT', onSigint);
    process.on('exit', discard);
    process.on('SIGTERM', onTerm);
    process.on('SIGHUP', onTerm);
    let result: RunResult;
    try {
      result = await req.done;
    } finally {
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onTerm);
      process.off('SIGHUP', onTerm);
      progress.done();
      client.close();
    }
    const written = files.finish(result.outputs);
    if (!json) for (const w of written) progress.note(`dw: saved ${w.path}`);
    if (json) {
      const { outputs: _drop, ...rest } = result;
      process.stdout.write(JSON.stringify({ ...rest, outputs: written, ...(byContent ? { sent } : {}) }) + '\n');
    } else {
      process.stdout.write(renderResults(result.results));
    }
    return EXIT.OK;
  },
};

/** For --json: the error as one JSON document on stdout. */
export function jsonError(err: unknown): string {
  return JSON.stringify({ ok: false, error: toErrorPayload(err) }) + '\n';
}
