// The runner: a child process of dwd that holds the onnxruntime sessions and executes plans. A
// native crash or an out-of-memory abort here costs the runs in flight, never the daemon.
import { rmSync } from 'node:fs';
import { DwError, toErrorPayload } from '../protocol/errors.js';
import type { RunEvent } from '../protocol/messages.js';
import { OutputWindow } from './output-window.js';
import type { FromRunner, ToRunner } from './ipc.js';
import { runPlan } from './engine.js';
import { SessionCache } from './sessions.js';
import { cancelIdleCollection, collectWhenIdle } from './idle-gc.js';

function send(msg: FromRunner): void {
  // The daemon may be gone already (it is being killed); nothing useful to do with the error then.
  process.send?.(msg, undefined, {}, () => {});
}

const sessions = new SessionCache((level, message) => send({ type: 'event', runId: '', event: { kind: 'log', level, message } }));
interface ActiveRun {
  controller: AbortController;
  outputs: OutputWindow;
  /** Whether the run has plugin code, which may leave a promise rejected with no handler. */
  plugins: boolean;
  /** Such a rejection, seen while this run was in progress: the run fails with it. */
  fault: DwError | null;
  /** Its onnxruntime calls in progress. */
  native: { calls: number };
}
const active = new Map<string, ActiveRun>();

const handlers: { [K in ToRunner['type']]: (msg: Extract<ToRunner, { type: K }>) => void } = {
  run: ({ runId, plan, maxResultBytes }) => {
    const controller = new AbortController();
    const outputs = new OutputWindow(controller.signal, (event) => send({ type: 'event', runId, event, ack: true }));
    cancelIdleCollection();
    const run: ActiveRun = { controller, outputs, plugins: plan.steps.some((s) => s.module), fault: null, native: { calls: 0 } };
    active.set(runId, run);
    const emit = (event: RunEvent) => (event.kind === 'output' ? outputs.send(event) : send({ type: 'event', runId, event }));
    runPlan(plan, { sessions, signal: controller.signal, emit, maxResultBytes, native: run.native })
      .then(async (result) => {
        // Node reports a promise nobody handles only after the microtasks drain: one turn, so a
        // plugin that returned while leaving one rejected fails its run instead of passing.
        if (run.plugins) await new Promise(setImmediate);
        if (run.fault) throw run.fault;
        send({ type: 'done', runId, result });
      })
      .catch((err: unknown) => send({ type: 'failed', runId, error: toErrorPayload(err, 'DW_ERR_RUN_FAILED') }))
      .finally(() => {
        active.delete(runId);
        if (active.size === 0) collectWhenIdle();
      });
  },
  cancel: ({ runId, reason }) => active.get(runId)?.controller.abort(DwError.fromPayload(reason)),
  ping: ({ reqId }) =>
    send({
      type: 'pong',
      reqId,
      native: [...active].filter(([, r]) => r.native.calls > 0).map(([id]) => id),
    }),
  forget: ({ runId }) => {
    active.delete(runId);
    if (active.size === 0) collectWhenIdle();
  },
  ack: ({ runId }) => active.get(runId)?.outputs.acked(),
  snapshot: ({ reqId }) => send({ type: 'snapshot', reqId, rss: process.memoryUsage.rss(), models: sessions.snapshot() }),
  release: ({ reqId, keys }) => {
    const rss_before = process.memoryUsage.rss();
    void sessions.release(keys).then(() => send({ type: 'released', reqId, keys, rss_before, rss_after: process.memoryUsage.rss() }));
  },
  preload: ({ reqId, model, session }) => {
    sessions.session(model, session).then(
      () => send({ type: 'preloaded', reqId, error: null }),
      (err: unknown) => send({ type: 'preloaded', reqId, error: toErrorPayload(err, 'DW_ERR_MODEL_LOAD') }),
    );
  },
};

process.on('message', (msg: ToRunner) => {
  const handler = handlers[msg.type] as ((m: ToRunner) => void) | undefined;
  handler?.(msg);
});
// Node's default for a rejected promise nobody handles is to exit: that would cost every run in
// this runner, and its loaded models, for one plugin's slip. The runs with plugin code fail with it.
process.on('unhandledRejection', (reason) => {
  const why = reason instanceof Error ? reason.message : String(reason);
  const err = new DwError('DW_ERR_RUN_FAILED', `plugin code left a promise rejected with nothing to handle it: ${why}`);
  const blamed = [...active.values()].filter((r) => r.plugins);
  send({
    type: 'event',
    runId: '',
    event: { kind: 'log', level: 'warn', message: `${err.message} (${blamed.length} run(s) with plugins fail)` },
  });
  for (const r of blamed) {
    r.fault ??= err;
    r.controller.abort(err);
  }
});
// Never outlive the daemon: when the IPC channel closes (dwd exited or was killed), so does the runner.
process.on('disconnect', () => process.exit(0));
// The private temporary folder dwd made for this runner (daemon/runner-process.ts).
process.on('exit', () => {
  if (process.env.DW_RUNNER_TMPDIR) rmSync(process.env.DW_RUNNER_TMPDIR, { recursive: true, force: true });
});
send({ type: 'ready', pid: process.pid, rss: process.memoryUsage.rss() });
