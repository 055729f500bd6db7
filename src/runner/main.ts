// The runner: a child process of dwd that holds the onnxruntime sessions and executes plans. A
// native crash or an out-of-memory abort here costs the runs in flight, never the daemon.
import type { CacheNote } from './step-cache.js';
import { AsyncLocalStorage, createHook } from 'node:async_hooks';
import { rmSync } from 'node:fs';
import { DwError, toErrorPayload } from '../protocol/errors.js';
import type { RunEvent } from '../protocol/messages.js';
import { OutputWindow } from './output-window.js';
import type { FromRunner, ModelReport, ToRunner } from './ipc.js';
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

/**
 * Which run made a promise: a rejection nobody handles fails the run whose code made it, never a
 * run beside it. Followed only while a run with plugin code is in progress (built-in pipelines
 * leave no promise unhandled, and the hook costs every promise something).
 */
const runContext = new AsyncLocalStorage<string>();
const promiseRun = new WeakMap<object, string>();
const promiseOwners = createHook({
  init(_id, type, _trigger, resource) {
    if (type !== 'PROMISE') return;
    const runId = runContext.getStore();
    if (runId) promiseRun.set(resource as object, runId);
  },
});
let pluginRuns = 0;

const handlers: { [K in ToRunner['type']]: (msg: Extract<ToRunner, { type: K }>) => void } = {
  run: ({ runId, plan, maxResultBytes }) => {
    const controller = new AbortController();
    const outputs = new OutputWindow(controller.signal, (event) => send({ type: 'event', runId, event, ack: true }));
    cancelIdleCollection();
    const run: ActiveRun = { controller, outputs, plugins: plan.steps.some((s) => s.module), fault: null, native: { calls: 0 } };
    active.set(runId, run);
    const emit = (event: RunEvent) => (event.kind === 'output' ? outputs.send(event) : send({ type: 'event', runId, event }));
    if (run.plugins && pluginRuns++ === 0) promiseOwners.enable();
    const model = (report: ModelReport) => send({ type: 'model', runId, ...report });
    const cached = (note: CacheNote) => send({ type: 'cached', ...note });
    const execute = () => runPlan(plan, { sessions, signal: controller.signal, emit, model, cached, maxResultBytes, native: run.native });
    (run.plugins ? runContext.run(runId, execute) : execute())
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
        if (run.plugins && --pluginRuns === 0) promiseOwners.disable();
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
// this runner, and its loaded models, for one plugin's slip. The run whose code made the promise fails.
process.on('unhandledRejection', (reason, promise) => {
  const err = new DwError('DW_ERR_RUN_FAILED', `plugin code left a promise rejected with nothing to handle it: ${describeReason(reason)}`);
  // The run that made the promise; without one known (made outside any run), the only plugin run, if one.
  const owner = promiseRun.get(promise);
  const plugins = [...active.values()].filter((r) => r.plugins);
  const blamed = owner ? [active.get(owner)].filter((r) => r !== undefined) : plugins.length === 1 ? plugins : [];
  send({
    type: 'event',
    runId: '',
    event: {
      kind: 'log',
      level: 'warn',
      message: `${err.message} (${blamed.length > 0 ? 'its run fails' : 'no run to blame: logged only'})`,
    },
  });
  for (const r of blamed) {
    r.fault ??= err;
    r.controller.abort(err);
  }
});
/** A rejection's reason in words, whatever it is (an object without a prototype cannot become a string). */
function describeReason(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  try {
    return String(reason);
  } catch {
    return Object.prototype.toString.call(reason);
  }
}

// Never outlive the daemon: when the IPC channel closes (dwd exited or was killed), so does the runner.
process.on('disconnect', () => process.exit(0));
// The private temporary folder dwd made for this runner (daemon/runner-process.ts).
process.on('exit', () => {
  if (process.env.DW_RUNNER_TMPDIR) rmSync(process.env.DW_RUNNER_TMPDIR, { recursive: true, force: true });
});
send({ type: 'ready', pid: process.pid, rss: process.memoryUsage.rss() });
