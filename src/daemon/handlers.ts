import { DwError } from '../protocol/errors.js';
import type { ResultMap, RunResult } from '../protocol/messages.js';
import { PROTOCOL_VERSION, PACKAGE_VERSION } from '../protocol/version.js';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { loadPlan, modelPathsOf } from '../workflow/loader.js';
import { gpuFacts, hostFacts } from './memory.js';
import { assignKeys } from './model-identity.js';
import type { Plan } from '../workflow/plan.js';
import type { Config } from './config.js';
import type { GrowthTracker } from './growth.js';
import type { FileHasher } from './hashing.js';
import type { Logger } from './log.js';
import type { LogSink } from './log-sink.js';
import type { ModelRegistry } from './models.js';
import type { Scheduler } from './scheduler.js';
import { type Connection, type Handler, type HandlerTable, MAX_REQUEST_BYTES } from './server.js';
import type { Supervisor } from './supervisor.js';
import type { CpuPriorities } from './cpu-priority.js';
import type { AllowedRoots } from '../workflow/roots.js';
import { hostname } from 'node:os';
import { uid } from '../protocol/paths.js';
import { PID_NAMESPACE } from '../protocol/pids.js';
import { ClientFiles } from './client-files.js';
import type { InputStore } from './input-store.js';
import type { StepStore } from './step-store.js';

export function runId(conn: Connection, id: string | number): string {
  return `${conn.id}:${id}`;
}

/**
 * What the handlers use of the daemon. Each handler takes only its part (a Pick of this), and
 * this module knows nothing of daemon.ts, which passes itself.
 */
export interface HandlerDeps {
  readonly config: Config;
  readonly log: Logger;
  readonly scheduler: Scheduler;
  readonly runners: readonly Supervisor[];
  readonly registry: ModelRegistry;
  readonly growth: readonly GrowthTracker[];
  readonly priorities: CpuPriorities;
  readonly roots: AllowedRoots;
  readonly hasher: FileHasher;
  /** Where files sent by content go; null when it could not be made (runs by content then fail). */
  readonly store: InputStore | null;
  readonly steps: StepStore;
  readonly logSink: LogSink | null;
  readonly pluginsAllowed: boolean;
  readonly autostarted: boolean;
  readonly socket: string;
  readonly startedAt: number;
  readonly shuttingDown: boolean;
  shutdown(reason: string): Promise<void>;
  noteRunnerRss(runner: number, rss: number): void;
  forgetLost(): void;
}

type Deps<K extends keyof HandlerDeps> = Pick<HandlerDeps, K>;

/**
 * The source of a request's files: the client's, by content, registered on the connection for its
 * offers and pieces; or null when the daemon opens the paths itself. `done` releases it.
 */
function filesFor(
  d: Deps<'store'>,
  conn: Connection,
  req: { id: string | number; by_content?: boolean },
  signal: AbortSignal,
): { files: ClientFiles | null; done: () => void } {
  if (!req.by_content) return { files: null, done: () => {} };
  if (!d.store)
    throw new DwError(
      'DW_ERR_RUN_FAILED',
      'this daemon has no input store (its state folder cannot be written; see its log), so it takes no files by content',
    );
  const id = runId(conn, req.id);
  const files = new ClientFiles(conn, req.id, d.store, signal);
  conn.files.set(id, files);
  return {
    files,
    done: () => {
      conn.files.delete(id);
      files.release();
    },
  };
}

const filesOf = (conn: Connection, target: string | number): ClientFiles => {
  const files = conn.files.get(runId(conn, target));
  if (!files) throw new DwError('DW_ERR_PROTOCOL', `request ${JSON.stringify(target)} of this connection takes no files now`, { target });
  return files;
};

const helloHandler =
  (d: Deps<'autostarted' | 'config' | 'socket'>): Handler<'hello'> =>
  async (req, conn) => {
    const mine: ResultMap['hello'] = {
      protocol: PROTOCOL_VERSION,
      version: PACKAGE_VERSION,
      pid: process.pid,
      autostarted: d.autostarted,
      timeout_ms: d.config.timeout_ms,
      uid: uid(),
      host: hostname(),
      socket: d.socket,
      pid_ns: PID_NAMESPACE,
      input_store_bytes: d.config.input_store_bytes,
      max_request_bytes: Math.min(d.config.max_frame, MAX_REQUEST_BYTES),
    };
    if (req.protocol !== PROTOCOL_VERSION || req.version !== PACKAGE_VERSION) {
      throw new DwError(
        'DW_ERR_VERSION_MISMATCH',
        `the running dwd is version ${PACKAGE_VERSION} (protocol ${PROTOCOL_VERSION}) but this dw is ${req.version} (protocol ${req.protocol})`,
        { daemon: mine, client: { version: req.version, protocol: req.protocol } },
      );
    }
    conn.helloDone = true;
    return mine;
  };

const runHandler =
  (
    d: Deps<'shuttingDown' | 'roots' | 'pluginsAllowed' | 'hasher' | 'scheduler' | 'config' | 'noteRunnerRss' | 'log' | 'store' | 'steps'>,
  ): Handler<'run'> =>
  async (req, conn): Promise<RunResult> => {
    if (d.shuttingDown) throw new DwError('DW_ERR_SHUTTING_DOWN', 'dwd is shutting down and takes no new runs');
    const t0 = performance.now();
    const id = runId(conn, req.id);
    if (conn.runs.has(id))
      throw new DwError('DW_ERR_PROTOCOL', `request id ${JSON.stringify(req.id)} is already running on this connection`);
    // Registered before the checks (hashing a big model takes a while), so a cancel or a
    // disconnect during them is not lost.
    const controller = new AbortController();
    conn.runs.set(id, controller);
    let plan: Plan | null = null;
    let release = () => {};
    let files: ClientFiles | null = null;
    try {
      const got = filesFor(d, conn, req, controller.signal);
      files = got.files;
      release = got.done;
      plan = await loadPlan(req.workflow, req.args, req.cwd, d.roots, { plugins: d.pluginsAllowed, source: files });
      await assignKeys(plan, d.hasher, (e) => conn.event(req.id, e));
      plan.cache = d.steps.forRun(req.no_cache === true);
      controller.signal.throwIfAborted();
      const r = await d.scheduler.submit({
        id,
        plan,
        controller,
        timeout_ms: req.timeout_ms ?? d.config.timeout_ms,
        keep_alive_ms: req.keep_alive_ms,
        emit: (e) => conn.event(req.id, e),
      });
      d.noteRunnerRss(r.runner, r.rss);
      d.log.info(
        { run: id, runner: r.runner, workflow: plan.workflow.path, load_ms: r.load_ms, run_ms: r.run_ms, queue_ms: r.queue_ms },
        'run done',
      );
      return {
        ok: true,
        workflow: plan.workflow,
        results: r.results,
        models: r.models,
        outputs: r.outputs,
        steps: r.steps,
        timings: { total_ms: Math.round(performance.now() - t0), queue_ms: r.queue_ms, load_ms: r.load_ms, run_ms: r.run_ms },
      };
    } catch (err) {
      d.log.info(
        { run: id, workflow: plan?.workflow.path ?? req.workflow, code: (err as DwError).code, err: (err as Error).message },
        'run failed',
      );
      throw files ? files.named(err) : err;
    } finally {
      conn.runs.delete(id);
      release();
    }
  };

const validateHandler =
  (d: Deps<'roots' | 'pluginsAllowed' | 'store'>): Handler<'validate'> =>
  async (req, conn) => {
    // Like a run's, a validation by content can be waiting for its client's files: a disconnect ends it.
    const id = runId(conn, req.id);
    const controller = new AbortController();
    conn.runs.set(id, controller);
    let release = () => {};
    let plan: Plan;
    try {
      const { files, done } = filesFor(d, conn, req, controller.signal);
      release = done;
      plan = await loadPlan(req.workflow, req.args ?? {}, req.cwd ?? '/', d.roots, { plugins: d.pluginsAllowed, source: files });
    } finally {
      conn.runs.delete(id);
      release();
    }
    return {
      ok: true,
      workflow: plan.workflow,
      steps: plan.steps.map((s) => ({ name: s.name, kind: s.kind, type: s.type })),
      variables: plan.variables,
      models: plan.steps.flatMap((s) => s.models.map((m) => ({ step: s.name, role: m.role, path: m.path }))),
    } satisfies ResultMap['validate'];
  };

const cacheSize = (steps: StepStore) => {
  const s = steps.stats();
  return { bytes: s.bytes, entries: s.entries, max_bytes: s.max_bytes };
};

const statusHandler =
  (
    d: Deps<'startedAt' | 'socket' | 'scheduler' | 'runners' | 'registry' | 'logSink' | 'config' | 'priorities' | 'steps'>,
  ): Handler<'status'> =>
  async () => {
    return {
      pid: process.pid,
      version: PACKAGE_VERSION,
      protocol: PROTOCOL_VERSION,
      uptime_s: Math.round((Date.now() - d.startedAt) / 1000),
      host: hostname(),
      socket: d.socket,
      runs_total: d.scheduler.runsTotal,
      runs_active: d.scheduler.running,
      runs_queued: d.scheduler.queued,
      runners: d.runners.map((r) => {
        const st = r.status();
        return {
          ...st,
          runs_active: d.scheduler.runningOn(r.index),
          runs_queued: d.scheduler.queuedFor(r.index),
          models: d.registry.modelsOn(r.index),
          cpu_priority: d.priorities.stateOf(st.pid),
        };
      }),
      models_loaded: d.registry.snapshot().length,
      cache: cacheSize(d.steps),
      log: d.logSink?.status ?? null,
      settings: { ...d.config },
    } satisfies ResultMap['status'];
  };

const stopHandler =
  (d: Deps<'shutdown' | 'config'>): Handler<'stop'> =>
  async () => {
    // Answer first, then stop: the client learns the request was taken before the socket closes.
    setImmediate(() => void d.shutdown('stop request'));
    return { stopping: true as const, pid: process.pid, grace_ms: d.config.grace_ms };
  };

const memoryHandler =
  (d: Deps<'runners' | 'registry' | 'growth' | 'startedAt' | 'config' | 'scheduler' | 'steps'>): Handler<'memory'> =>
  async () => {
    const statuses = d.runners.map((r) => r.status());
    // A runner stopped by a signal cannot answer: it is not asked (that took the whole 5 s timeout).
    const [snaps, host] = await Promise.all([
      Promise.all(d.runners.map((r, i) => (statuses[i]!.frozen ? null : r.snapshot()))),
      hostFacts(),
    ]);
    const gpu = await gpuFacts([process.pid, ...statuses.flatMap((r) => (r.pid ? [r.pid] : []))]);
    const models = d.registry.snapshot();
    const beyondFresh = d.runners.map((r, i) => (snaps[i] && r.freshRss !== null ? Math.max(0, snaps[i].rss - r.freshRss) : null));
    return {
      daemon: {
        pid: process.pid,
        version: PACKAGE_VERSION,
        rss: process.memoryUsage.rss(),
        uptime_s: Math.round((Date.now() - d.startedAt) / 1000),
      },
      host,
      budget: {
        max_bytes: d.registry.budgetTotal(d.runners.length),
        used_bytes: models.reduce((s, m) => s + m.cost_bytes, 0),
        runner_bytes: beyondFresh.includes(null) ? null : beyondFresh.reduce((a, b) => a! + b!, 0),
      },
      runners: d.runners.map((r, i) => {
        const growth = d.growth[i]!.snapshot();
        return {
          index: i,
          pid: statuses[i]!.pid,
          state: statuses[i]!.state,
          frozen: statuses[i]!.frozen,
          device: r.device,
          runs_active: d.scheduler.runningOn(i),
          runs_queued: d.scheduler.queuedFor(i),
          rss: snaps[i]?.rss ?? null,
          fresh_rss: r.freshRss,
          growth: growth && { ...growth, warn_bytes: d.config.growth_warn_bytes },
          models: models
            .filter((m) => m.runner === i)
            .map((m) => ({
              path: m.path,
              key: m.key,
              role: m.role,
              provider: m.provider,
              options: m.session,
              size_bytes: m.size_bytes,
              cost_bytes: m.cost_bytes,
              load_ms: m.load_ms,
              uses: m.uses,
              loaded_at: m.loaded_at,
              last_used: m.last_used,
              keep_alive_ms: m.keep_alive_ms,
              expires_at: m.expires_at,
              in_use: m.in_use,
              workflows: m.workflows,
            })),
        };
      }),
      gpus: gpu.gpus,
      gpu_note: gpu.note,
      evictions: d.registry.evictions.map((e) => ({ ...e })),
      runs_total: d.scheduler.runsTotal,
      cache: cacheSize(d.steps),
    } satisfies ResultMap['memory'];
  };

const clearHandler =
  (d: Deps<'scheduler' | 'runners' | 'registry' | 'growth' | 'log' | 'roots' | 'forgetLost'>): Handler<'clear'> =>
  async (req, conn) => {
    /** Says why dw clear is quiet for a while: it waits for runs, which may take minutes. */
    const waiting = (runs: string) =>
      void conn.event(req.id, {
        kind: 'log',
        level: 'info',
        message: `waiting for ${runs} to end (--no-wait fails instead)`,
      });
    /** What the runners hold together (null when one does not answer). */
    const rss = async () => {
      const snaps = await Promise.all(d.runners.map((r) => r.snapshot()));
      return snaps.every((x) => x !== null) ? snaps.reduce((sum, x) => sum + x!.rss, 0) : null;
    };
    if (!req.path) {
      if (req.no_wait && d.scheduler.running)
        throw new DwError('DW_ERR_MODEL_IN_USE', 'a run is in progress; drop --no-wait to clear once it ends', {
          active: d.scheduler.activeJobs().map((j) => j.plan.workflow.path),
        });
      if (d.scheduler.running) waiting('the runs in progress');
      return d.scheduler.exclusive('clear', async (): Promise<ResultMap['clear']> => {
        const before = await rss();
        const released = d.registry.snapshot().map((m) => ({ key: m.key, path: m.path }));
        d.forgetLost();
        await Promise.all(d.runners.map((r) => r.replace()));
        for (const g of d.growth) g.reset();
        const after = await rss();
        d.log.info(
          { released: released.length, rss_before: before, rss_after: after, runners: d.runners.length },
          'cleared: runners replaced',
        );
        return {
          scope: 'all',
          released,
          rss_before: before,
          rss_after: after,
          freed_bytes: before !== null && after !== null ? before - after : null,
        };
      });
    }
    const target = resolve(req.cwd ?? '/', req.path);
    await d.roots.check(target, 'path');
    const st = await stat(target).catch(() => null);
    // A folder is cleared when models were loaded from it (a diffusion export); otherwise it is a slip.
    if (st?.isDirectory() && !d.registry.hasPath(target))
      throw new DwError('DW_ERR_USAGE', `${target} is a folder; dw clear takes a model file, a workflow, or nothing (to clear all)`, {
        path: target,
      });
    if (st && !st.isDirectory() && !st.isFile())
      throw new DwError(
        'DW_ERR_USAGE',
        `${target} is not a regular file; dw clear takes a model file, a workflow, or nothing (to clear all)`,
        {
          path: target,
        },
      );
    const exists = st?.isFile() ?? false;
    const isWorkflow = exists && target.endsWith('.json');
    if (!exists && !d.registry.hasPath(target)) {
      throw new DwError('DW_ERR_FILE_NOT_FOUND', `${target} does not exist and no loaded model comes from it`, { path: target });
    }
    const paths = new Set(isWorkflow ? await modelPathsOf(target) : [target]);
    if (req.no_wait && d.registry.pathsInUse(paths)) {
      throw new DwError(
        'DW_ERR_MODEL_IN_USE',
        `a run is using ${isWorkflow ? 'a model of ' : ''}${target}; drop --no-wait to clear once it ends`,
        { path: target },
      );
    }
    // Waits only for runs of these models; runs of others, on any runner, go on.
    if (d.registry.pathsInUse(paths)) waiting(`the runs using ${isWorkflow ? `the models of ${req.path}` : req.path}`);
    return d.scheduler.whenFree(`clear:${target}`, d.registry.keysFor(paths), async (): Promise<ResultMap['clear']> => {
      const slots = d.registry.slotsFor(paths);
      const before = await rss();
      const gone = await d.registry.drop(slots, `dw clear ${req.path}`, false);
      const after = await rss();
      return {
        scope: 'path',
        released: gone.map((e) => ({ key: e.key, path: e.path })),
        rss_before: before,
        rss_after: after,
        freed_bytes: before !== null && after !== null ? before - after : null,
      };
    });
  };

const cancelHandler: Handler<'cancel'> = async (req, conn) => {
  const id = runId(conn, req.target);
  const run = conn.runs.get(id);
  if (!run) return { cancelled: false };
  run.abort(new DwError('DW_ERR_CANCELLED', 'the run was cancelled by the client'));
  return { cancelled: true };
};

const cacheHandler =
  (d: Deps<'steps'>): Handler<'cache'> =>
  async (req) => {
    const cleared = req.clear ? await d.steps.clear() : undefined;
    return { ...(await d.steps.recounted()), ...(cleared ? { cleared } : {}) };
  };

const offerHandler: Handler<'offer'> = async (req, conn) => filesOf(conn, req.target).offered(req);
const putHandler: Handler<'put'> = async (req, conn) => filesOf(conn, req.target).put(req);

export function createHandlers(d: HandlerDeps): HandlerTable {
  return {
    hello: helloHandler(d),
    run: runHandler(d),
    validate: validateHandler(d),
    status: statusHandler(d),
    stop: stopHandler(d),
    memory: memoryHandler(d),
    clear: clearHandler(d),
    cancel: cancelHandler,
    offer: offerHandler,
    cache: cacheHandler(d),
    put: putHandler,
  };
}
