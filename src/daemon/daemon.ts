// The daemon's parts, wired together, and its one idempotent shutdown.
import type { Socket } from 'node:net';
import { DwError } from '../protocol/errors.js';
import type { Config } from './config.js';
import { FileHasher } from './hashing.js';
import { createHandlers } from './handlers.js';
import { modelKey } from './model-identity.js';
import type { Bound } from './listen.js';
import type { Logger } from './log.js';
import type { LogSink } from './log-sink.js';
import { type Budget, ModelRegistry, type ModelSnapshot } from './models.js';
import type { SessionOptionsSpec } from '../workflow/plan.js';
import { Scheduler } from './scheduler.js';
import { serve } from './server.js';
import { Supervisor } from './supervisor.js';
import { GrowthTracker } from './growth.js';
import { CpuPriorities, mayRaiseBack } from './cpu-priority.js';
import { poolLayout } from './pool-layout.js';
import { gpuIndexes, gpuMemoryByIndex } from '../host/nvidia.js';
import { AllowedRoots } from '../workflow/roots.js';
import { ModelWatcher } from './watcher.js';
import { InputStore } from './input-store.js';
import { cacheDir, stateDir } from '../protocol/paths.js';
import { StepStore } from './step-store.js';
import { join } from 'node:path';

/** Room in a result frame for what surrounds the results (models, outputs, timings). */
const RESULT_FRAME_OVERHEAD = 256 * 1024;
/**
 * A run's results are for reading (dw prints them); bulk data goes to saved outputs, which stream
 * in small pieces. The daemon holds a result whole while it relays it, and its memory does not
 * come all the way back afterwards (+25 MB after 15 MB results, +75-125 MB after 50 MB ones).
 */
const MAX_RESULT_BYTES = 16 * 1024 * 1024;

/** How long the daemon must have had no run before it looks at the runner's memory. */
const IDLE_MEMORY_CHECK_MS = 2000;

/** How long shutdown waits for clients to take the last answers written to them. */
const CLOSE_WAIT_MS = 5000;

/** Past the grace period, how long stopping the runner and closing up may take before the exit is forced. */
const SHUTDOWN_SLACK_MS = 15_000;

/**
 * Where each runner's models count (--max-memory): bytes are one budget for every runner; N%gpu is
 * N% of each GPU for the models of the runners on it (a CPU runner has none then).
 */
function budgets(max: Config['max_memory'], devices: string[]): (runner: number) => Budget | null {
  if (max === null) return () => null;
  if (typeof max === 'number') return () => ({ scope: 'all', bytes: max });
  const totals = gpuMemoryByIndex();
  return (runner) => {
    const gpu = /^cuda:(\d+)$/.exec(devices[runner] ?? '');
    const total = gpu ? totals.get(Number(gpu[1])) : undefined;
    return total === undefined ? null : { scope: devices[runner]!, bytes: Math.round((total * max.gpu_percent) / 100) };
  };
}

/** The input store in the state folder; null (said in the log) when that cannot be written. */
function openInputStore(config: Config, log: Logger): InputStore | null {
  const dir = join(stateDir(), 'inputs');
  try {
    return new InputStore(dir, config.input_store_bytes);
  } catch (err) {
    log.warn({ dir, err: (err as Error).message }, 'no input store: runs that send their files by content will fail');
    return null;
  }
}

/** The step cache; off (said in the log) when its folder cannot be made. */
function openStepStore(config: Config, log: Logger): StepStore {
  const dir = cacheDir();
  try {
    return new StepStore(dir, config.cache_size_bytes);
  } catch (err) {
    log.warn({ dir, err: (err as Error).message }, 'no step cache: every step runs every time');
    return new StepStore(dir, 0);
  }
}

export class Daemon {
  /** The pool: one Supervisor per runner process, by index. */
  readonly runners: readonly Supervisor[];
  readonly scheduler: Scheduler;
  readonly registry: ModelRegistry;
  readonly watcher: ModelWatcher;
  readonly hasher = new FileHasher();
  readonly roots: AllowedRoots;
  readonly store: InputStore | null;
  readonly steps: StepStore;
  readonly pluginsAllowed: boolean;
  readonly startedAt = Date.now();
  /** Memory growth across warm runs, per runner. */
  readonly growth: readonly GrowthTracker[];
  readonly priorities: CpuPriorities;
  shuttingDown = false;
  /** Models crashed runners held, to load again in their successors (each snapshot names its runner). */
  private lost: ModelSnapshot[] = [];
  private shutdownPromise: Promise<void> | null = null;
  private connections: Set<Socket> = new Set();
  private stopServing = () => {};
  private memoryCheck: NodeJS.Timeout | null = null;
  /** Resolves once shutdown has finished: the process may exit then. */
  readonly stopped: Promise<void>;
  private markStopped!: () => void;

  constructor(
    readonly config: Config,
    readonly log: Logger,
    private readonly bound: Bound,
    readonly autostarted: boolean,
    readonly logSink: LogSink | null = null,
  ) {
    this.stopped = new Promise((resolve) => (this.markStopped = resolve));
    this.roots = new AllowedRoots(config.allowed_roots);
    this.store = openInputStore(config, log);
    this.steps = openStepStore(config, log);
    if (this.store) this.roots.deny(this.store.dir, "the daemon's input store (files clients sent by content)");
    // A plugin runs any code as the daemon; with roots set, the operator meant to contain requests.
    this.pluginsAllowed = config.plugins === 'on' || (config.plugins === 'auto' && !this.roots.active);
    const devices = poolLayout(config.runners, config.devices);
    const gpuPool = devices.some((x) => x !== 'cpu');
    const gpus = gpuPool ? new Set(gpuIndexes().map((i) => `cuda:${i}`)) : new Set<string>();
    for (const device of new Set(devices.filter((x) => x !== 'cpu' && !gpus.has(x))))
      log.warn({ device }, `${device} is not a GPU nvidia-smi reports: its runner's models load on the CPU unless CUDA finds it`);
    this.growth = devices.map(() => new GrowthTracker(config.growth_warn_bytes));
    const maxResult = Math.min(MAX_RESULT_BYTES, config.max_frame - Math.min(RESULT_FRAME_OVERHEAD, config.max_frame / 4));
    this.runners = devices.map(
      (device, i) =>
        new Supervisor(
          i,
          device,
          gpuPool,
          log.child({ runner: i }),
          {
            exited: (crashed) => {
              // Remember what the dead runner held, so the next one can load it again unasked.
              // A runner that dies during the previous recovery must not make us forget what it was recovering.
              const held = this.registry.snapshot().filter((m) => m.runner === i);
              if (crashed) this.lost = [...new Map([...this.lost, ...held].map((m) => [m.key, m])).values()];
              this.registry.reset(i);
            },
            ready: () => void this.recover(i),
            // Whatever the abandoned run still does (timers, memory) ends with its runner: replaced once idle.
            abandoned: () => this.scheduleMemoryCheck(),
            cached: (note) => this.steps.note(note),
          },
          maxResult,
        ),
    );
    this.registry = new ModelRegistry({
      release: (runner, keys) => this.runners[runner]!.release(keys),
      loaded: async (runner) => (await this.runners[runner]!.snapshot())?.models ?? null,
      log,
      budgetOf: budgets(config.max_memory, devices),
      keepAliveMs: config.keep_alive_ms,
      changed: () => this.watcher?.sync(this.registry.paths()),
    });
    this.scheduler = new Scheduler(
      this.runners,
      this.registry,
      { parallel: config.parallel, maxQueue: config.max_queue, replicas: config.replicas === 'auto' },
      () => this.priorities.update(),
    );
    this.priorities = new CpuPriorities({
      busy: () => {
        const since = this.scheduler.youngestRuns();
        // A run on a runner stopped by a signal uses no CPU: it is no reason to lower another.
        return this.runners.map((r, i) => {
          const st = r.status();
          return { pid: st.pid, since: st.frozen ? null : (since[i] ?? null) };
        });
      },
      enabled: this.runners.length > 1 && mayRaiseBack(),
      noted: (pid, nice) =>
        nice === null
          ? log.warn({ runner_pid: pid }, 'CPU priorities between runners are off: raising a lowered runner back was refused')
          : log.debug(
              { runner_pid: pid, nice },
              nice > 0 ? 'runner lowered: a younger run is busy on another runner' : 'runner priority back to normal',
            ),
    });
    this.watcher = new ModelWatcher({
      registry: this.registry,
      hasher: this.hasher,
      log,
      changed: config.prewarm ? (path, dropped) => void this.prewarm(path, dropped) : undefined,
    });
  }

  get socket(): string {
    return this.bound.socket;
  }

  get activated(): boolean {
    return this.bound.activated;
  }

  /** Serves the socket and starts the runner; resolves when the runner is ready or failed to start. */
  start(): Promise<void> {
    const { connections, stop } = serve(this.bound.server, {
      handlers: createHandlers(this),
      log: this.log,
      maxFrame: this.config.max_frame,
      onClose: (conn) => {
        for (const run of conn.runs.values()) run.abort(new DwError('DW_ERR_CANCELLED', 'the client disconnected'));
      },
    });
    this.connections = connections;
    this.stopServing = stop;
    // The daemon of record is the one its socket path leads to: removed by hand, or replaced by
    // another file, this one is unreachable for good and only holds memory: it stops.
    this.bound.watchOwnership((why) => {
      this.log.warn({ socket: this.socket, why }, 'the socket no longer leads to this daemon');
      void this.shutdown(`socket lost: ${why}`);
    });
    if (this.runners.length > 1 && !this.priorities.enabled)
      this.log.info(
        {},
        'CPU priorities between runners are off: dwd could not raise a lowered runner back (run it as root, or with systemd LimitNICE=+0)',
      );
    // Start the runners now so the first run does not pay for the process start.
    return Promise.all(
      this.runners.map((r) =>
        r.start().catch((err: Error) => this.log.error({ runner: r.index, err: err.message }, 'runner failed to start')),
      ),
    ).then(() => {});
  }

  /** After a run: warns once if its runner keeps growing across warm runs of the same models. */
  noteRunnerRss(runner: number, rss: number): void {
    const warning = this.growth[runner]!.note(rss, this.registry.generation);
    if (warning) this.log.warn({ runner, rss, threshold: this.config.growth_warn_bytes }, warning);
    this.scheduleMemoryCheck();
  }

  private get abandonedRuns(): number {
    return this.runners.reduce((sum, r) => sum + r.abandoned, 0);
  }

  /** Looks at the runners' memory once no run has come for a moment (each run that ends puts it off). */
  private scheduleMemoryCheck(): void {
    if (this.config.recycle_above_bytes === 0 && this.abandonedRuns === 0) return;
    if (this.memoryCheck) clearTimeout(this.memoryCheck);
    this.memoryCheck = setTimeout(() => {
      this.memoryCheck = null;
      void this.checkRunnerMemory();
    }, IDLE_MEMORY_CHECK_MS);
    this.memoryCheck.unref();
  }

  /**
   * A run on a large input leaves the runner holding its peak: onnxruntime's arenas keep what they
   * grew to (3.1 GB after one OCR of a 16000x16000 image with limit_side_len 4096, 0.2 GB after
   * ordinary runs), and no session option gives it back here (without the arena, every OCR run was
   * 15-20% slower). Only a new process does: an idle runner holding far more than its models need
   * is replaced, and its models are loaded again at once.
   */
  private async checkRunnerMemory(): Promise<void> {
    if (this.shuttingDown) return;
    if (!this.scheduler.idleNow) {
      if (this.abandonedRuns > 0) this.scheduleMemoryCheck(); // looked at again once runs stop coming
      return;
    }
    for (const runner of this.runners) {
      if (runner.abandoned > 0) {
        await this.recycle(runner.index, `it still holds ${runner.abandoned} abandoned run(s), which may go on working there`, {
          abandoned: runner.abandoned,
        });
        continue;
      }
      if (this.config.recycle_above_bytes === 0) continue;
      const snap = await runner.snapshot();
      const fresh = runner.freshRss;
      if (!snap || fresh === null || !this.scheduler.idleNow) continue;
      const models = this.registry
        .snapshot()
        .filter((m) => m.runner === runner.index)
        .reduce((sum, m) => sum + m.cost_bytes, 0);
      const excess = snap.rss - fresh - models;
      // Models whose working memory is legitimately large (a diffusion UNet) are allowed twice their size.
      const allowed = Math.max(this.config.recycle_above_bytes, 2 * models);
      if (excess <= allowed) continue;
      await this.recycle(runner.index, 'it holds far more memory than its models', {
        rss: snap.rss,
        excess_bytes: excess,
        models_bytes: models,
        allowed_bytes: allowed,
      });
    }
  }

  /** Replaces a runner with a fresh process and loads what the old one held (with their keep-alive). */
  private async recycle(index: number, why: string, facts: Record<string, number>): Promise<void> {
    const runner = this.runners[index]!;
    const held = this.registry.snapshot().filter((m) => m.session && m.runner === index);
    this.log.info({ runner: index, ...facts, models: held.length }, `replacing the idle runner: ${why}`);
    await this.scheduler.exclusive('recycle', () => runner.replace());
    this.growth[index]!.reset();
    const reloaded = await this.preload(
      index,
      held.map((m) => ({ ...m, session: m.session! })),
      'runner replaced',
    );
    this.log.info(
      { runner: index, rss_before: facts.rss, rss_after: (await runner.snapshot())?.rss ?? null, models: held.length, reloaded },
      'runner replaced: memory given back, models loaded again',
    );
  }

  /** Loads models in the background, ahead of any run that will ask for them; false if any failed. */
  private async preload(
    runner: number,
    models: Array<{
      key: string;
      path: string;
      files?: string[];
      role: string;
      session: SessionOptionsSpec;
      workflows: string[];
      keep_alive_ms?: number;
    }>,
    why: string,
  ): Promise<boolean> {
    let ok = true;
    for (const m of models) {
      const model = { role: m.role, kind: 'onnx' as const, path: m.path, key: m.key, ...(m.files?.length ? { files: m.files } : {}) };
      // A run may have loaded it meanwhile, wherever it was placed: a model is never loaded twice.
      const reply = await this.scheduler
        .background(`preload:${m.key}`, runner, [m.key], async () =>
          this.registry.runnersOf(m.key).length === 0 ? this.runners[runner]!.preload(model, m.session) : 'loaded already',
        )
        .catch(() => null);
      if (reply === 'loaded already') continue;
      if (!reply || reply.error) {
        this.log.warn({ runner, path: m.path, why, err: reply?.error?.message ?? 'no runner' }, 'background load failed');
        ok = false;
        continue;
      }
      await this.registry.adopt(runner, [m]);
    }
    return ok;
  }

  /** --prewarm: after a model file changed, load its new content before anyone asks. */
  private async prewarm(path: string, dropped: Array<ModelSnapshot & { digest: string }>): Promise<void> {
    let ok = true;
    for (const m of dropped.filter((x) => x.session))
      ok = (await this.preload(m.runner, [{ ...m, key: modelKey('onnx', m.digest, m.session!), session: m.session! }], 'prewarm')) && ok;
    if (ok) this.log.info({ path, sessions: dropped.length }, 'model prewarmed after its file changed');
  }

  /** After a crash: the new runner loads what the old one held, so the next run is a cache hit. */
  private async recover(runner: number): Promise<void> {
    const todo = this.lost.filter((m) => m.session && m.runner === runner);
    if (todo.length === 0) return;
    let loaded = 0;
    for (const m of todo) {
      if (!this.lost.some((x) => x.key === m.key)) continue; // dw clear meanwhile: not wanted any more
      // Taken off the list only once loaded: if this runner dies too, its successor tries again.
      if (!(await this.preload(runner, [{ ...m, session: m.session! }], 'recovery'))) continue;
      this.lost = this.lost.filter((x) => x.key !== m.key);
      loaded += 1;
    }
    this.log.info({ runner, models: todo.length, loaded }, 'reloaded the models the crashed runner held');
  }

  /** dw clear: what a crashed runner held is not to be loaded again either. */
  forgetLost(): void {
    this.lost = [];
  }

  /** Stops accepting, lets runs in flight finish within the grace period, cancels the rest, cleans up. */
  shutdown(reason: string): Promise<void> {
    if (!this.shutdownPromise) {
      // However shutdown goes, the process ends: a part that never finishes stopping must not keep it.
      const watchdog = setTimeout(() => {
        this.log.error({ reason }, 'shutdown did not finish in time: exiting anyway');
        this.abandon();
        this.markStopped();
      }, this.config.grace_ms + SHUTDOWN_SLACK_MS);
      watchdog.unref();
      this.shutdownPromise = this.doShutdown(reason)
        .catch((err: unknown) => this.log.error({ err }, 'shutdown failed'))
        .finally(() => {
          clearTimeout(watchdog);
          this.markStopped();
        });
    }
    return this.shutdownPromise;
  }

  /**
   * Ends every connection once what was written to it has gone out: a run's last answer may be
   * megabytes still in the socket's buffer, and exiting at once cut a 3 MB result short. A client
   * that does not read is not waited for past CLOSE_WAIT_MS.
   */
  private async closeConnections(): Promise<void> {
    const closing = [...this.connections].map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.destroyed) return resolve();
          s.once('close', () => resolve());
          s.end();
        }),
    );
    const late = setTimeout(() => {
      for (const s of this.connections) s.destroy();
    }, CLOSE_WAIT_MS);
    await Promise.all(closing);
    clearTimeout(late);
  }

  /** For an exit that cannot wait (a second SIGTERM): the runners are killed, our files removed. */
  abandon(): void {
    for (const r of this.runners) r.killNow();
    this.bound.cleanup();
  }

  private async doShutdown(reason: string): Promise<void> {
    this.log.info({ reason }, 'shutting down');
    this.shuttingDown = true;
    if (this.memoryCheck) clearTimeout(this.memoryCheck);
    this.bound.server.close();
    const stopping = new DwError('DW_ERR_SHUTTING_DOWN', `dwd is shutting down (${reason})`);
    this.scheduler.drainQueue(stopping);
    const graceOver = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), this.config.grace_ms).unref());
    if ((await Promise.race([this.scheduler.idle(), graceOver])) === 'timeout') {
      for (const job of this.scheduler.activeJobs()) job.controller.abort(stopping);
      await this.scheduler.idle();
    }
    await this.watcher.close();
    this.priorities.stop();
    await Promise.all(this.runners.map((r) => r.stop()));
    await this.closeConnections();
    this.stopServing();
    this.bound.cleanup();
    this.log.info({ reason }, 'stopped');
  }
}
