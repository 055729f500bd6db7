// Runs wait in a FIFO queue and go to the runner one at a time; each has a deadline. Past it the
// run is cancelled, and if the runner does not yield within a grace period it is killed (the
// supervisor restarts it). A queued run can be cancelled without the runner ever seeing it.
import { DwError } from '../protocol/errors.js';
import type { RunEvent } from '../protocol/messages.js';
import type { RunnerResult } from '../runner/ipc.js';
import type { Plan } from '../workflow/plan.js';
import type { Supervisor } from './supervisor.js';

export interface Job {
  id: string;
  plan: Plan;
  timeout_ms: number;
  emit: (e: RunEvent) => void;
}

interface Queued extends Job {
  enqueued: number;
  resolve: (r: RunnerResult & { queue_ms: number }) => void;
  reject: (e: DwError) => void;
}

/** How long a cancelled or timed-out run may take to yield before its runner is killed. */
export const YIELD_GRACE_MS = 2000;

export class Scheduler {
  private readonly queue: Queued[] = [];
  private active: Queued | null = null;
  private activeTimers: NodeJS.Timeout[] = [];
  private idleWaiters: Array<() => void> = [];
  runsTotal = 0;

  constructor(private readonly supervisor: Supervisor) {}

  submit(job: Job): Promise<RunnerResult & { queue_ms: number }> {
    return new Promise((resolve, reject) => {
      this.queue.push({ ...job, enqueued: Date.now(), resolve, reject });
      if (this.active) job.emit({ kind: 'queued', position: this.queue.length });
      this.next();
    });
  }

  get queued(): number {
    return this.queue.length;
  }
  get running(): number {
    return this.active ? 1 : 0;
  }
  get activeId(): string | null {
    return this.active?.id ?? null;
  }

  private next(): void {
    if (this.active || this.queue.length === 0) return;
    const job = this.queue.shift()!;
    this.active = job;
    this.runsTotal += 1;
    this.queue.forEach((q, i) => q.emit({ kind: 'queued', position: i + 1 }));
    const queue_ms = Date.now() - job.enqueued;
    job.emit({ kind: 'started' });
    this.activeTimers = [
      setTimeout(() => this.abort(job.id, new DwError('DW_ERR_TIMEOUT', `the run exceeded its ${job.timeout_ms / 1000} s deadline and was cancelled`, { timeout_ms: job.timeout_ms, workflow: job.plan.workflow.path })), job.timeout_ms),
    ];
    this.supervisor
      .run(job.id, job.plan, job.emit)
      .then((r) => job.resolve({ ...r, queue_ms }), (err: DwError) => job.reject(err))
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
    if (this.active?.id !== id) return false;
    this.supervisor.cancel(id, reason.toPayload());
    this.activeTimers.push(setTimeout(() => this.supervisor.kill(id, reason), YIELD_GRACE_MS));
    return true;
  }

  /** Rejects everything still queued (shutdown). */
  drainQueue(reason: DwError): void {
    for (const q of this.queue.splice(0)) q.reject(reason);
  }

  /** Resolves once no run is active. */
  idle(): Promise<void> {
    return this.active ? new Promise((wake) => this.idleWaiters.push(wake)) : Promise.resolve();
  }
}
