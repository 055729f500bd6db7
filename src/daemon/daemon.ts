// The daemon's parts, wired together, and its one idempotent shutdown.
import type { Socket } from 'node:net';
import { DwError } from '../protocol/errors.js';
import type { Config } from './config.js';
import { FileHasher } from './hashing.js';
import { createHandlers, optionsDigest } from './handlers.js';
import type { Bound } from './listen.js';
import type { Logger } from './log.js';
import { ModelRegistry, type ModelSnapshot } from './models.js';
import { Scheduler } from './scheduler.js';
import { serve } from './server.js';
import { Supervisor } from './supervisor.js';
import { GrowthTracker } from './growth.js';
import { ModelWatcher } from './watcher.js';

export class Daemon {
  readonly supervisor: Supervisor;
  readonly scheduler: Scheduler;
  readonly registry: ModelRegistry;
  readonly watcher: ModelWatcher;
  readonly hasher = new FileHasher();
  readonly startedAt = Date.now();
  readonly growth: GrowthTracker;
  shuttingDown = false;
  private shutdownPromise: Promise<void> | null = null;
  private connections: Set<Socket> = new Set();

  constructor(
    readonly config: Config,
    readonly log: Logger,
    private readonly bound: Bound,
    readonly autostarted: boolean,
  ) {
    this.growth = new GrowthTracker(config.growth_warn_bytes);
    this.supervisor = new Supervisor(log, { exited: () => this.registry.reset() });
    this.registry = new ModelRegistry({
      release: (keys) => this.supervisor.release(keys),
      loaded: async () => (await this.supervisor.snapshot())?.models ?? null,
      log,
      maxMemory: config.max_memory,
      keepAliveMs: config.keep_alive_ms,
      changed: () => this.watcher?.sync(this.registry.paths()),
    });
    this.scheduler = new Scheduler(this.supervisor, this.registry);
    this.watcher = new ModelWatcher({
      registry: this.registry,
      hasher: this.hasher,
      log,
      changed: config.prewarm ? (path, sha, dropped) => void this.prewarm(path, sha, dropped) : undefined,
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
        for (const id of conn.runs) this.scheduler.abort(id, new DwError('DW_ERR_CANCELLED', 'the client disconnected'));
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

  /** --prewarm: after a model file changed, load its new content in the background before anyone asks. */
  private async prewarm(path: string, sha: string, dropped: ModelSnapshot[]): Promise<void> {
    for (const m of dropped) {
      if (!m.session) continue;
      const key = `${sha}:${optionsDigest(m.session)}`;
      const model = { role: m.role, kind: 'onnx' as const, path, key };
      const session = m.session;
      const reply = await this.scheduler.exclusive(`prewarm:${key}`, () => this.supervisor.preload(model, session)).catch(() => null);
      if (reply?.error) {
        this.log.warn({ path, err: reply.error.message }, 'prewarm failed');
        continue;
      }
      await this.registry.adopt([{ key, role: m.role, session, workflows: m.workflows }]);
      this.log.info({ path, key }, 'model prewarmed after its file changed');
    }
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
      const active = this.scheduler.activeJob;
      if (active) this.scheduler.abort(active.id, stopping);
      await this.scheduler.idle();
    }
    await this.watcher.close();
    await this.supervisor.stop();
    for (const s of this.connections) s.end();
    this.bound.cleanup();
    this.log.info({ reason }, 'stopped');
  }
}
