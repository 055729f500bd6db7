// The daemon's parts, wired together, and its one idempotent shutdown.
import type { Socket } from 'node:net';
import { DwError } from '../protocol/errors.js';
import type { Config } from './config.js';
import { FileHasher } from './hashing.js';
import { createHandlers } from './handlers.js';
import type { Bound } from './listen.js';
import type { Logger } from './log.js';
import { Scheduler } from './scheduler.js';
import { serve } from './server.js';
import { Supervisor } from './supervisor.js';

export class Daemon {
  readonly supervisor: Supervisor;
  readonly scheduler: Scheduler;
  readonly hasher = new FileHasher();
  readonly startedAt = Date.now();
  shuttingDown = false;
  private shutdownPromise: Promise<void> | null = null;
  private connections: Set<Socket> = new Set();

  constructor(
    readonly config: Config,
    readonly log: Logger,
    private readonly bound: Bound,
    readonly autostarted: boolean,
  ) {
    this.supervisor = new Supervisor(log);
    this.scheduler = new Scheduler(this.supervisor);
  }

  get socket(): string {
    return this.bound.socket;
  }

  start(): void {
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
    this.supervisor.start().catch((err: Error) => this.log.error({ err: err.message }, 'runner failed to start'));
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
      const active = this.scheduler.activeId;
      if (active) this.scheduler.abort(active, stopping);
      await this.scheduler.idle();
    }
    await this.supervisor.stop();
    for (const s of this.connections) s.end();
    this.bound.cleanup();
    this.log.info({ reason }, 'stopped');
  }
}

