// Runs wait in a queue and go to the pool's runners in lanes: up to `parallel` at once on each, but
// never two runs that use the same model at the same time (the second waits, and sees its queue
// position). Placement (place()): a run goes to the runner that holds its models, so a cache hit
// never moves; a run whose models are loaded nowhere goes to the runner with the least work (ties:
// fewer models). Each run has a deadline; past it (or on a cancel) the run's controller is aborted,
// and a run that does not yield within a grace period is abandoned, or its runner killed
// (unstick()). Runs that were on a runner that died are run again once, one at a time (execute()).
// Maintenance (dw clear, recycling) goes to the front of the queue and runs alone, as soon as the
// runs in progress end.
import { DwError } from '../protocol/errors.js';
import type { RunEvent } from '../protocol/messages.js';
import type { EmitEvent, ModelReport, RunnerResult } from '../runner/ipc.js';
import type { Plan } from '../workflow/plan.js';
import type { ModelRegistry } from './models.js';
import type { Supervisor } from './supervisor.js';

/** What the scheduler asks of a runner of the pool (supervisor.ts); tests give it fakes. */
export type PoolRunner = Pick<Supervisor, 'run' | 'has' | 'cancel' | 'answers' | 'abandon' | 'kill' | 'status' | 'device' | 'isReady'>;

/** What the scheduler asks of the model registry (models.ts). */
export type SchedulerRegistry = Pick<
  ModelRegistry,
  'prepare' | 'finish' | 'noteModel' | 'runnersOf' | 'modelsOn' | 'gather' | 'loadMsOf' | 'fitsWithoutEviction'
>;

export interface Job {
  id: string;
  plan: Plan;
  /** The run's one cancellation (server.ts): whoever aborts it (client, deadline, shutdown), the run stops wherever it is. */
  controller: AbortController;
  timeout_ms: number;
  keep_alive_ms?: number;
  emit: EmitEvent;
}

/** A run's result, with its time in the queue and the runner it ran on. */
export type RunOutcome = RunnerResult & { queue_ms: number; runner: number };

interface Entry {
  id: string;
  enqueued: number;
  /** Does the work once it is this entry's turn. */
  execute: () => Promise<unknown>;
  resolve: (r: unknown) => void;
  reject: (e: DwError) => void;
  /** A run (with its models); absent for background loads and maintenance. */
  job?: Job;
  /** A background load: it takes a lane on this runner like a run, beside runs of other models. */
  lane?: { runner: number };
  /** Work on some models (dw clear FILE): on no runner, once no run uses them. Without job, lane or hold: maintenance, alone. */
  hold?: true;
  keys: Set<string>;
  /** The runner it was placed on, once started. */
  runner?: number;
  started?: number;
  timers: NodeJS.Timeout[];
  /** The step in progress, for a timeout message that says what was running. */
  step?: string;
}

/** Where a `whenFree` entry runs: on no runner. */
const NO_RUNNER = -1;

/** How often a running run looks whether its runner was stopped by a signal (SIGSTOP). */
const FROZEN_CHECK_MS = 2000;

/** How long a cancelled or timed-out run may take to yield before its runner is killed. */
export const YIELD_GRACE_MS = 2000;

export interface SchedulerLimits {
  parallel: number;
  maxQueue: number;
  /** dwd --replicas auto: a model whose runs keep waiting longer than its load may be loaded in another runner too. */
  replicas?: boolean;
}

export class Scheduler {
  private readonly queue: Entry[] = [];
  private readonly active = new Map<string, Entry>();
  private idleWaiters: Array<() => void> = [];
  runsTotal = 0;

  constructor(
    private readonly runners: readonly PoolRunner[],
    private readonly registry: SchedulerRegistry,
    private readonly limits: SchedulerLimits,
    /** Told whenever a run starts or ends (CPU priorities follow the runs). */
    private readonly changed: () => void = () => {},
  ) {}

  submit(job: Job): Promise<RunOutcome> {
    if (this.queue.length >= this.limits.maxQueue) {
      return Promise.reject(
        new DwError('DW_ERR_BUSY', `the queue is full (${this.limits.maxQueue} runs waiting, dwd --max-queue); try again later`, {
          queued: this.queue.length,
        }),
      );
    }
    const { signal } = job.controller;
    if (signal.aborted) return Promise.reject(signal.reason as DwError);
    return new Promise((resolve, reject) => {
      const keys = new Set(job.plan.steps.flatMap((s) => s.models.filter((m) => m.kind === 'onnx').map((m) => m.key)));
      const entry: Entry = {
        id: job.id,
        enqueued: Date.now(),
        job,
        keys,
        timers: [],
        execute: () => this.execute(entry, job),
        resolve: resolve as (r: unknown) => void,
        reject,
      };
      signal.addEventListener('abort', () => this.aborted(entry, signal.reason as DwError), { once: true });
      this.queue.push(entry);
      this.next();
      if (this.queue.includes(entry)) this.announcePositions();
    });
  }

  /** Runs `fn` alone, as soon as the runs in progress end, ahead of queued runs. */
  exclusive<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.enqueue({ id, keys: new Set() }, fn, true);
  }

  /**
   * Runs `fn` as soon as no run uses any of `keys` (dw clear FILE), ahead of queued runs of them:
   * runs of other models, on any runner, go on meanwhile.
   */
  whenFree<T>(id: string, keys: string[], fn: () => Promise<T>): Promise<T> {
    return this.enqueue({ id, hold: true, keys: new Set(keys) }, fn, true);
  }

  /**
   * Loads models in the background (--prewarm, recovery after a crash) in a lane of its own, like a
   * run of those models: runs of other models go on meanwhile, and a run of the same models waits.
   */
  background<T>(id: string, runner: number, keys: string[], fn: () => Promise<T>): Promise<T> {
    return this.enqueue({ id, lane: { runner }, keys: new Set(keys) }, fn, false);
  }

  /** Queues work that is not a run: at the end, or `ahead` of the queued runs. */
  private enqueue<T>(what: Pick<Entry, 'id' | 'keys' | 'lane' | 'hold'>, fn: () => Promise<T>, ahead: boolean): Promise<T> {
    return new Promise((resolve, reject) => {
      const entry: Entry = { ...what, enqueued: Date.now(), timers: [], execute: fn, resolve: resolve as (r: unknown) => void, reject };
      const i = ahead ? this.queue.findIndex((q) => q.job) : -1;
      this.queue.splice(i < 0 ? this.queue.length : i, 0, entry);
      this.next();
    });
  }

  private async execute(entry: Entry, job: Job): Promise<RunOutcome> {
    const queue_ms = Date.now() - entry.enqueued;
    const index = entry.runner!;
    const runner = this.runners[index]!;
    // Models of this run that another runner holds (a run of models loaded in two places) come
    // here; with replicas, a copy may stay where it is.
    if (!this.limits.replicas) await this.registry.gather([...entry.keys], index);
    const acquired = await this.registry.prepare(index, job.plan);
    const emit = (e: RunEvent) => {
      if (e.kind === 'step' && e.state === 'start') entry.step = e.step;
      return job.emit(e);
    };
    // Known from the moment the runner has it, not only when the run ends: a runner dying in the
    // middle of the run is replaced by one that loads it again, and dw memory shows it meanwhile.
    const model = (r: ModelReport) => {
      const step = job.plan.steps.find((s) => s.name === r.step);
      const m = step?.models.find((x) => x.role === r.role);
      if (!step || !m) return;
      const why = this.registry.noteModel(index, r, { ...m, session: step.session, workflow: job.plan.workflow });
      if (why) void job.emit(why);
    };
    const cancelled = () => (job.controller.signal.aborted ? (job.controller.signal.reason as DwError) : undefined);
    const attempt = () => runner.run(job.id, job.plan, emit, cancelled, model);
    const retryable = (err: unknown): err is DwError =>
      err instanceof DwError && err.code === 'DW_ERR_RUNNER_CRASHED' && !job.controller.signal.aborted;
    try {
      try {
        return { ...(await attempt()), queue_ms, runner: index };
      } catch (err) {
        // The runner died under this run (another run's kill, a native crash, an OOM kill):
        // built-in pipelines write no files, so running it again on the fresh runner is safe.
        if (!retryable(err)) throw err;
        await job.emit({ kind: 'retry', reason: err.message.replace(/; it is being restarted$/, '') });
      }
      // Once, and one retried run at a time: the run that takes down the runner again is the
      // cause (a poison pill) and fails alone; the runs that only shared the runner with it pass.
      try {
        return { ...(await this.oneRetryAtATime(index, attempt)), queue_ms, runner: index };
      } catch (err) {
        if (!retryable(err)) throw err;
        throw new DwError('DW_ERR_RUNNER_CRASHED', `${err.message}; the run had been retried once already, so it is not tried again`, {
          ...err.details,
          attempts: 2,
        });
      }
    } finally {
      await this.registry.finish(index, job.plan, acquired, job.keep_alive_ms);
    }
  }

  /** The end of each runner's chain of retried runs: each waits for the one before it on that runner. */
  private readonly retries = new Map<number, Promise<unknown>>();

  private oneRetryAtATime<T>(runner: number, fn: () => Promise<T>): Promise<T> {
    const mine = (this.retries.get(runner) ?? Promise.resolve()).then(fn, fn);
    this.retries.set(
      runner,
      mine.catch(() => {}),
    );
    return mine;
  }

  /** Nothing running, loading or waiting. */
  get idleNow(): boolean {
    return this.active.size === 0 && this.queue.length === 0;
  }

  /** Runs waiting (dw status): a waiting dw clear is not one. */
  get queued(): number {
    return this.queue.filter((q) => q.job).length;
  }
  get running(): number {
    return [...this.active.values()].filter((e) => e.job).length;
  }
  activeJobs(): Job[] {
    return [...this.active.values()].flatMap((e) => (e.job ? [e.job] : []));
  }

  /** Runs on runner `index` now. */
  runningOn(index: number): number {
    return [...this.active.values()].filter((e) => e.job && e.runner === index).length;
  }

  /** When the youngest run on each runner started (null: none runs there): CPU priorities follow it. */
  youngestRuns(): Array<number | null> {
    return this.runners.map((_, i) => {
      const starts = [...this.active.values()].filter((e) => e.job && e.runner === i).map((e) => e.started!);
      return starts.length > 0 ? Math.max(...starts) : null;
    });
  }

  private lanesUsed(index: number): number {
    return [...this.active.values()].filter((e) => e.runner === index).length;
  }

  /** Runs waiting for runner `index`: those whose models it holds most of (each run counted once), but `self`. */
  queuedFor(index: number, self?: Entry): number {
    return this.queue.filter((q) => q.job && q !== self && this.homeOf(q.keys) === index).length;
  }

  /** The runner holding most of these models (ties: the lower index); null when none holds any. */
  private homeOf(keys: Set<string>): number | null {
    const held = new Map<number, number>();
    for (const k of keys) for (const r of this.registry.runnersOf(k)) held.set(r, (held.get(r) ?? 0) + 1);
    const [best] = [...held].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    return best ? best[0] : null;
  }

  /** What runner `index` has to do: the runs and loads on it, and the runs waiting for it (other than `self`, being placed). */
  private work(index: number, self?: Entry): number {
    return this.lanesUsed(index) + this.queuedFor(index, self);
  }

  /**
   * Where `entry` starts now, or null when it must wait. Maintenance needs every runner to itself;
   * a run or a load needs a free lane on its runner and its models free there: no other run on
   * them, and without replicas no other run on them anywhere.
   */
  private place(entry: Entry): number | null {
    const active = [...this.active.values()];
    if (this.isMaintenance(entry)) return active.length === 0 ? 0 : null;
    if (active.some((a) => this.isMaintenance(a))) return null;
    const keys = [...entry.keys];
    const usedOn = (i: number | null) => active.some((a) => (i === null || a.runner === i) && keys.some((k) => a.keys.has(k)));
    if (entry.hold) return usedOn(null) ? null : NO_RUNNER;
    // A dw clear of these models in progress: no run may take them meanwhile, copy or not.
    if (active.some((a) => a.hold && keys.some((k) => a.keys.has(k)))) return null;
    const free = (i: number) => this.lanesUsed(i) < this.limits.parallel && !usedOn(i);
    if (!this.limits.replicas && usedOn(null)) return null;
    if (entry.lane) return free(entry.lane.runner) ? entry.lane.runner : null;
    // A cache hit never moves: the runner holding most of the run's models takes it (with
    // replicas, the least busy of those holding them), or it waits.
    const homes = new Map<number, number>();
    for (const k of keys) for (const home of this.registry.runnersOf(k)) homes.set(home, (homes.get(home) ?? 0) + 1);
    if (homes.size > 0) {
      const best = Math.max(...homes.values());
      const usable = [...homes]
        .filter(([i, n]) => n === best && free(i))
        .sort((a, b) => this.work(a[0], entry) - this.work(b[0], entry) || a[0] - b[0]);
      if (usable.length > 0) return usable[0]![0];
      return this.limits.replicas ? this.replica(entry, keys, homes, free) : null;
    }
    // Being loaded by another run somewhere: wait for it, never load one model twice by accident.
    if (usedOn(null)) return null;
    return this.leastBusy(entry, free);
  }

  /**
   * Replicas (dwd --replicas auto): every runner holding most of the run's models is busy with
   * them. Once the run has waited longer than the models take to load, a runner with a free lane
   * and room under its budget (nothing evicted for it) loads them too; until then it waits.
   */
  private replica(entry: Entry, keys: string[], homes: Map<number, number>, free: (i: number) => boolean): number | null {
    const loadMs = Math.max(...keys.map((k) => this.registry.loadMsOf(k)));
    const due = entry.enqueued + loadMs;
    if (Date.now() < due) {
      this.wakeAt(due);
      return null;
    }
    // Any runner free of these models with room: one holding some of them already (a clear or an
    // eviction took the rest) loads only what it lacks, so it goes first.
    const models = entry.job!.plan.steps.flatMap((s) => s.models.filter((m) => m.kind === 'onnx'));
    const room = this.runners.map((_, i) => i).filter((i) => free(i) && this.registry.fitsWithoutEviction(i, models));
    const most = Math.max(0, ...room.map((i) => homes.get(i) ?? 0));
    return room.length > 0 ? this.leastBusy(entry, (i) => room.includes(i) && (homes.get(i) ?? 0) === most) : null;
  }

  /** Of the runners `allowed`, one on a device the run asks for, with the least work (runs on it and waiting for it), then the fewest models. */
  private leastBusy(entry: Entry, allowed: (i: number) => boolean): number | null {
    const wantsGpu = entry.job?.plan.steps.some((s) => s.models.length > 0 && s.session.providers.some((p) => p !== 'cpu')) ?? false;
    const all = this.runners.map((r, i) => ({ r, i }));
    const onDevice = all.filter(({ r }) => (r.device !== 'cpu') === wantsGpu);
    // A runner stopped by a signal (SIGSTOP) would hold a new run until it is resumed: the run waits
    // for another rather; only when all are stopped does it go to one (and is told why it waits).
    const fitting = onDevice.length > 0 ? onDevice : all;
    const thawed = fitting.filter(({ r }) => !r.status().frozen);
    const candidates = (thawed.length > 0 ? thawed : fitting)
      .filter(({ i }) => allowed(i))
      .sort(
        (a, b) =>
          this.work(a.i, entry) - this.work(b.i, entry) ||
          Number(!a.r.isReady) - Number(!b.r.isReady) ||
          this.registry.modelsOn(a.i) - this.registry.modelsOn(b.i) ||
          a.i - b.i,
      );
    return candidates[0]?.i ?? null;
  }

  /** The earliest time a waiting run may be placed as a replica: next() looks again then. */
  private wake: { at: number; timer: NodeJS.Timeout } | null = null;

  private wakeAt(at: number): void {
    if (this.wake && this.wake.at <= at) return;
    if (this.wake) clearTimeout(this.wake.timer);
    const timer = setTimeout(
      () => {
        this.wake = null;
        this.next();
      },
      Math.max(0, at - Date.now()),
    );
    timer.unref();
    this.wake = { at, timer };
  }

  private isMaintenance(e: Entry): boolean {
    return !e.job && !e.lane && !e.hold;
  }

  private next(): void {
    // Models a waiting dw clear is for: later runs of them may not overtake it (with copies in
    // several runners, a steady stream of runs could otherwise keep it waiting for ever).
    const held = new Set<string>();
    for (let i = 0; i < this.queue.length; ) {
      const entry = this.queue[i]!;
      const runner = entry.job && [...entry.keys].some((k) => held.has(k)) ? null : this.place(entry);
      if (runner === null) {
        if (entry.hold) for (const k of entry.keys) held.add(k);
        // Maintenance waits at the head; nothing may overtake it, or it could wait forever.
        if (this.isMaintenance(entry)) break;
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      entry.runner = runner;
      this.start(entry);
    }
  }

  private announcePositions(): void {
    this.queue.forEach((q, i) => q.job?.emit({ kind: 'queued', position: i + 1 }));
  }

  private start(entry: Entry): void {
    entry.started = Date.now();
    this.active.set(entry.id, entry);
    const job = entry.job;
    if (job) {
      const runner = this.runners[entry.runner!]!;
      this.runsTotal += 1;
      job.emit({ kind: 'started' });
      const timedOut = () => {
        const what = entry.step
          ? `while running step "${entry.step}" of ${job.plan.workflow.path}`
          : `before its first step (${job.plan.workflow.path})`;
        return new DwError('DW_ERR_TIMEOUT', `the run exceeded its ${job.timeout_ms / 1000} s deadline ${what} and was cancelled`, {
          timeout_ms: job.timeout_ms,
          workflow: job.plan.workflow.path,
          step: entry.step ?? null,
        });
      };
      entry.timers.push(setTimeout(() => job.controller.abort(timedOut()), job.timeout_ms));
      // A runner stopped by a signal runs nothing, silently: the client is told why it waits.
      let told = false;
      entry.timers.push(
        setInterval(() => {
          const r = runner.status();
          if (r.frozen && r.pid && !told)
            void job.emit({
              kind: 'log',
              level: 'warn',
              message: `its runner (pid ${r.pid}) is stopped by a signal: this run waits until it is resumed (kill -CONT ${r.pid}); its deadline still counts`,
            });
          told = r.frozen === true;
        }, FROZEN_CHECK_MS),
      );
      this.changed();
    }
    entry
      .execute()
      .then(entry.resolve, (err: unknown) =>
        entry.reject(err instanceof DwError ? err : new DwError('DW_ERR_INTERNAL', String((err as Error)?.message ?? err))),
      )
      .finally(() => {
        entry.timers.forEach(clearTimeout);
        this.active.delete(entry.id);
        const before = this.queue.length;
        this.next();
        if (this.queue.length !== before) this.announcePositions();
        if (this.active.size === 0) this.idleWaiters.splice(0).forEach((wake) => wake());
        if (job) this.changed();
      });
  }

  /** A run's controller was aborted: a queued run leaves the queue; a running one is cancelled in its runner. */
  private aborted(entry: Entry, reason: DwError): void {
    const i = this.queue.indexOf(entry);
    if (i >= 0) {
      this.queue.splice(i, 1);
      entry.reject(reason);
      this.announcePositions();
      return;
    }
    // Not sent to the runner yet: execute() stops it before it is (the signal says so), and no
    // runner needs telling; already done: nothing to do.
    const runner = entry.runner === undefined ? undefined : this.runners[entry.runner];
    if (!this.active.has(entry.id) || !runner?.has(entry.id)) return;
    runner.cancel(entry.id, reason.toPayload());
    entry.timers.push(setTimeout(() => void this.unstick(runner, entry.id, reason), YIELD_GRACE_MS));
  }

  /**
   * A cancelled run that has not yielded. If its runner's loop answers and the run is not inside an
   * onnxruntime call, it waits on something that never comes: only the run is abandoned. Otherwise
   * (the loop is held by a long JavaScript call, or the run is in a native call that nothing can
   * interrupt) the runner is killed, and its other runs are retried on the fresh one (execute()).
   */
  private async unstick(runner: PoolRunner, id: string, reason: DwError): Promise<void> {
    if (!runner.has(id)) return;
    const pong = await runner.answers();
    if (!runner.has(id)) return; // it yielded meanwhile
    if (pong && !pong.native.includes(id)) runner.abandon(id, reason);
    else runner.kill(id, reason);
  }

  /** Rejects everything still queued (shutdown). */
  drainQueue(reason: DwError): void {
    for (const q of this.queue.splice(0)) q.reject(reason);
  }

  idle(): Promise<void> {
    return this.active.size > 0 ? new Promise((wake) => this.idleWaiters.push(wake)) : Promise.resolve();
  }
}
