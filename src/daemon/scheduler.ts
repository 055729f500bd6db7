// Runs wait in a FIFO queue and go to the runner one at a time; each has a deadline. Past it the
// run is cancelled, and if the runner does not yield within a grace period it is killed (the
// supervisor restarts it). A queued run can be cancelled without the runner ever seeing it.
// Maintenance (dw clear) goes to the front of the queue: it waits for the run in progress only.
import { DwError } from '../protocol/errors.js';
import type { RunEvent } from '../protocol/messages.js';
import type { RunnerResult } from '../runner/ipc.js';
import type { Plan } from '../workflow/plan.js';
import type { ModelRegistry } from './models.js';
import type { Supervisor } from './supervisor.js';

export interface Job {
  id: string;
  plan: Plan;
  timeout_ms: number;
  keep_alive_ms?: number;
  emit: (e: RunEvent) => void;
}

export type RunOutcome = RunnerResult & { queue_ms: number };

interface Entry {
  id: string;
  enqueued: number;
  emit: (e: RunEvent) => void;
  /** Does the work once it is this entry's turn. */
  execute: () => Promise<unknown>;
  resolve: (r: unknown) => void;
  reject: (e: DwError) => void;
  /** What the runner is running for it, if anything (a run; maintenance has no timeout). */
  job?: Job;
}

/** How long a cancelled or timed-out run may take to yield before its runner is killed. */
export const YIELD_GRACE_MS = 2000;

export class Scheduler {
  private readonly queue: Entry[] = [];
  private active: Entry | null = null;
  private activeTimers: NodeJS.Timeout[] = [];
  private idleWaiters: Array<() => void> = [];
  runsTotal = 0;

  constructor(
    private readonly supervisor: Supervisor,
    private readonly registry: ModelRegistry,
  ) {}

  submit(job: Job): Promise<RunOutcome> {
    return new Promise((resolve, reject) => {
      const entry: Entry = {
        id: job.id,
        enqueued: Date.now(),
        emit: job.emit,
        job,
        execute: () => this.execute(job, entry.enqueued),
        resolve: resolve as (r: unknown) => void,
        reject,
      };
      this.queue.push(entry);
      if (this.active) job.emit({ kind: 'queued', position: this.queue.length });
      this.next();
    });
  }

  /** Runs `fn` alone, as soon as the run in progress (if any) ends, ahead of queued runs. */
  exclusive<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return new Promise((resolve, reject) => {
      this.queue.unshift({ id, enqueued: Date.now(), emit: () => {}, execute: fn, resolve: resolve as (r: unknown) => void, reject });
      this.next();
    });
  }

  private async execute(job: Job, enqueued: number): Promise<RunOutcome> {
    const queue_ms = Date.now() - enqueued;
    const acquired = await this.registry.prepare(job.plan, job.emit);
    try {
      const r = await this.supervisor.run(job.id, job.plan, job.emit);
      return { ...r, queue_ms };
    } finally {
      await this.registry.finish(job.plan, acquired, job.keep_alive_ms);
    }
  }

  get queued(): number {
    return this.queue.length;
  }
  get running(): number {
    return this.active?.job ? 1 : 0;
  }
  get activeJob(): Job | null {
    return this.active?.job ?? null;
  }

  private next(): void {
    if (this.active || this.queue.length === 0) return;
    const entry = this.queue.shift()!;
    this.active = entry;
    this.queue.forEach((q, i) => q.emit({ kind: 'queued', position: i + 1 }));
    const job = entry.job;
    if (job) {
      this.runsTotal += 1;
      job.emit({ kind: 'started' });
      const timeout = new DwError('DW_ERR_TIMEOUT', `the run exceeded its ${job.timeout_ms / 1000} s deadline and was cancelled`, { timeout_ms: job.timeout_ms, workflow: job.plan.workflow.path });
      this.activeTimers = [setTimeout(() => this.abort(job.id, timeout), job.timeout_ms)];
    }
    entry
      .execute()
      .then(entry.resolve, (err: unknown) => entry.reject(err instanceof DwError ? err : new DwError('DW_ERR_INTERNAL', String((err as Error)?.message ?? err))))
      .finally(() => {
        this.activeTimers.forEach(clearTimeout);
        this.activeTimers = [];
        this.active = null;
        this.next();
        if (!this.active) this.idleWaiters.splice(0).forEach((wake) => wake());
      });
  }

  /** Cancels a queued or running job. Returns false when no such job is waiting or running. */
  abort(id: string, reason: DwError): boolean {
    const i = this.queue.findIndex((q) => q.id === id);
    if (i >= 0) {
      this.queue.splice(i, 1)[0]!.reject(reason);
      return true;
    }
    if (this.active?.id !== id || !this.active.job) return false;
    this.supervisor.cancel(id, reason.toPayload());
    this.activeTimers.push(setTimeout(() => this.supervisor.kill(id, reason), YIELD_GRACE_MS));
    return true;
  }

  /** Rejects everything still queued (shutdown). */
  drainQueue(reason: DwError): void {
    for (const q of this.queue.splice(0)) q.reject(reason);
  }

  idle(): Promise<void> {
    return this.active ? new Promise((wake) => this.idleWaiters.push(wake)) : Promise.resolve();
  }
}
