// The daemon's parts, wired together, and its one idempotent shutdown.
import type { Socket } from 'node:net';
import { DwError } from '../protocol/errors.js';
import type { Config } from './config.js';
import { FileHasher } from './hashing.js';
import { createHandlers, optionsDigest } from './handlers.js';
import type { Bound } from './listen.js';
import type { Logger } from './log.js';
import { ModelRegistry, type ModelSnapshot } from './models.js';
import type { SessionOptionsSpec } from '../workflow/plan.js';
import { Scheduler } from './scheduler.js';
import { serve } from './server.js';
import { Supervisor } from './supervisor.js';
import { GrowthTracker } from './growth.js';
import { AllowedRoots } from '../workflow/roots.js';
import { ModelWatcher } from './watcher.js';

export class Daemon {
  readonly supervisor: Supervisor;
  readonly scheduler: Scheduler;
  readonly registry: ModelRegistry;
  readonly watcher: ModelWatcher;
  readonly hasher = new FileHasher();
  readonly roots: AllowedRoots;
  readonly pluginsAllowed: boolean;
  readonly startedAt = Date.now();
  readonly growth: GrowthTracker;
  shuttingDown = false;
  /** Models a crashed runner held, to load again in its successor. */
  private lost: ModelSnapshot[] = [];
  private shutdownPromise: Promise<void> | null = null;
  private connections: Set<Socket> = new Set();

  constructor(
    readonly config: Config,
    readonly log: Logger,
    private readonly bound: Bound,
    readonly autostarted: boolean,
  ) {
    this.roots = new AllowedRoots(config.allowed_roots);
    // A plugin runs any code as the daemon; with roots set, the operator meant to contain requests.
    this.pluginsAllowed = config.plugins === 'on' || (config.plugins === 'auto' && !this.roots.active);
    this.growth = new GrowthTracker(config.growth_warn_bytes);
    this.supervisor = new Supervisor(log, {
      exited: (crashed) => {
        // Remember what the dead runner held, so the next one can load it again unasked.
        // A runner that dies during the previous recovery must not make us forget what it was recovering.
        if (crashed) this.lost = [...new Map([...this.lost, ...this.registry.snapshot()].map((m) => [m.key, m])).values()];
        this.registry.reset();
      },
      ready: () => void this.recover(),
    });
    this.registry = new ModelRegistry({
      release: (keys) => this.supervisor.release(keys),
      loaded: async () => (await this.supervisor.snapshot())?.models ?? null,
      log,
      maxMemory: config.max_memory,
      keepAliveMs: config.keep_alive_ms,
      changed: () => this.watcher?.sync(this.registry.paths()),
    });
    this.scheduler = new Scheduler(this.supervisor, this.registry, { parallel: config.parallel, maxQueue: config.max_queue });
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

  /** Serves the socket and starts the runner; resolves when the runner is ready or failed to start. */
  start(): Promise<void> {
    const { connections } = serve(this.bound.server, {
      handlers: createHandlers(this),
      log: this.log,
      maxFrame: this.config.max_frame,
      onClose: (conn) => {
        for (const [id, run] of conn.runs) {
          const reason = new DwError('DW_ERR_CANCELLED', 'the client disconnected');
          if (!this.scheduler.abort(id, reason)) run.cancelled = reason;
        }
      },
    });
    this.connections = connections;
    // Start the runner now so the first run does not pay for the process start.
    return this.supervisor.start().catch((err: Error) => this.log.error({ err: err.message }, 'runner failed to start'));
  }

  /** After a run: warns once if the runner keeps growing across warm runs of the same models. */
  noteRunnerRss(rss: number): void {
    const warning = this.growth.note(rss, this.registry.generation);
    if (warning) this.log.warn({ rss, threshold: this.config.growth_warn_bytes }, warning);
  }

  /** Loads models in the background, ahead of any run that will ask for them; false if any failed. */
  private async preload(models: Array<{ key: string; path: string; files?: string[]; role: string; session: SessionOptionsSpec; workflows: string[] }>, why: string): Promise<boolean> {
    let ok = true;
    for (const m of models) {
      const model = { role: m.role, kind: 'onnx' as const, path: m.path, key: m.key, ...(m.files?.length ? { files: m.files } : {}) };
      const reply = await this.scheduler.exclusive(`preload:${m.key}`, () => this.supervisor.preload(model, m.session)).catch(() => null);
      if (!reply || reply.error) {
        this.log.warn({ path: m.path, why, err: reply?.error?.message ?? 'no runner' }, 'background load failed');
        ok = false;
        continue;
      }
      await this.registry.adopt([m]);
    }
    return ok;
  }

  /** --prewarm: after a model file changed, load its new content before anyone asks. */
  private async prewarm(path: string, dropped: Array<ModelSnapshot & { digest: string }>): Promise<void> {
    const models = dropped.filter((m) => m.session).map((m) => ({ ...m, key: `${m.digest}:${optionsDigest(m.session!)}`, session: m.session! }));
    if (await this.preload(models, 'prewarm')) this.log.info({ path, sessions: models.length }, 'model prewarmed after its file changed');
  }

  /** After a crash: the new runner loads what the old one held, so the next run is a cache hit. */
  private async recover(): Promise<void> {
    const todo = this.lost.filter((m) => m.session);
    if (todo.length === 0) return;
    let loaded = 0;
    for (const m of todo) {
      // Taken off the list only once loaded: if this runner dies too, its successor tries again.
      if (!(await this.preload([{ ...m, session: m.session! }], 'recovery'))) continue;
      this.lost = this.lost.filter((x) => x.key !== m.key);
      loaded += 1;
    }
    this.log.info({ models: todo.length, loaded }, 'reloaded the models the crashed runner held');
  }

  /** Stops accepting, lets runs in flight finish within the grace period, cancels the rest, cleans up. */
  shutdown(reason: string): Promise<void> {
    this.shutdownPromise ??= this.doShutdown(reason);
    return this.shutdownPromise;
  }

  private async doShutdown(reason: string): Promise<void> {
    this.log.info({ reason }, 'shutting down');
    this.shuttingDown = true;
    this.bound.server.close();
    const stopping = new DwError('DW_ERR_SHUTTING_DOWN', `dwd is shutting down (${reason})`);
    this.scheduler.drainQueue(stopping);
    const graceOver = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), this.config.grace_ms).unref());
    if ((await Promise.race([this.scheduler.idle(), graceOver])) === 'timeout') {
      for (const job of this.scheduler.activeJobs()) this.scheduler.abort(job.id, stopping);
      await this.scheduler.idle();
    }
    await this.watcher.close();
    await this.supervisor.stop();
    for (const s of this.connections) s.end();
    this.bound.cleanup();
    this.log.info({ reason }, 'stopped');
  }
}
