// Owns one runner child process of the pool (the daemon has one Supervisor per runner): starts
// it on its device, routes its messages to the runs waiting on them, notices when it dies, fails
// the runs it took with it and starts a new one (with backoff when it keeps dying). The daemon
// never exits because of a runner.
import type { CacheNote } from '../runner/step-cache.js';
import type { ChildProcess } from 'node:child_process';
import { DwError, type ErrorPayload } from '../protocol/errors.js';
import type { RunnerStatus } from '../protocol/messages.js';
import type { EmitEvent, FromRunner, ModelReport, RunnerResult, ToRunner } from '../runner/ipc.js';
import type { Plan, PlanModel, SessionOptionsSpec } from '../workflow/plan.js';
import type { Logger } from './log.js';
import { forkRunner } from './runner-process.js';
import { pidStopped } from '../protocol/pids.js';

interface Pending {
  emit: EmitEvent;
  model?: (report: ModelReport) => void;
  resolve: (r: RunnerResult) => void;
  reject: (e: DwError) => void;
  /** Set when the daemon kills the runner on purpose (timeout): the run fails with this, not CRASHED. */
  killReason?: DwError;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

const BACKOFF_MS = [0, 250, 1000, 2000, 5000];
/** A runner that lived this long is considered healthy again: the backoff starts over. */
const HEALTHY_MS = 30_000;

export class Supervisor {
  private child: ChildProcess | null = null;
  private ready: Promise<void> | null = null;
  private readonly pending = new Map<string, Pending>();
  /** Replies the runner owes, by request number (snapshot, release). */
  private readonly calls = new Map<number, (reply: FromRunner | null) => void>();
  private callSeq = 0;
  private state: RunnerStatus['state'] = 'stopped';
  private restarts = 0;
  private crashStreak = 0;
  private lastExit: string | null = null;
  private startedAt = 0;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | null = null;
  private restartAt = 0;
  /** The current runner's memory when it was ready, before any model: its excess is counted from there. */
  freshRss: number | null = null;
  /** Runs abandoned on the current runner (they may still be working in it). */
  abandoned = 0;
  /** Set while dw clear swaps the runner: its exit is intended, not a crash. */
  private replacing = false;

  constructor(
    /** Its place in the pool, as dw memory and dw status number runners. */
    readonly index: number,
    /** `cpu` or `cuda:N` (pool-layout.ts): the runner's GPU providers are pinned to that device. */
    readonly device: string,
    /** Whether the pool has GPU runners: only then does a CPU runner skip GPU providers. */
    private readonly gpuPool: boolean,
    private readonly log: Logger,
    private readonly hooks: {
      /** The runner is gone; `crashed` unless it was stopped or replaced on purpose. */
      exited?: (crashed: boolean) => void;
      /** A runner (first, restarted or replacement) is ready for work. */
      ready?: (restarts: number) => void;
      /** A run was abandoned on the runner: it may go on working there, unseen, until the runner is replaced. */
      abandoned?: () => void;
      /** A step cache hit, or an entry stored. */
      cached?: (note: CacheNote) => void;
    } = {},
    /** Room for a run's results in the daemon's result frame (--max-frame). */
    private readonly maxResultBytes = Number.POSITIVE_INFINITY,
  ) {}

  start(): Promise<void> {
    if (this.ready) return this.ready;
    // Started early (a run wants it): the backoff's own start is void, and status must not say "down".
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.abandoned = 0;
    this.state = this.restarts > 0 ? 'restarting' : 'starting';
    this.startedAt = Date.now();
    const child = forkRunner(this.log, this.device !== 'cpu' || this.gpuPool ? this.device : null);
    this.child = child;
    // Registered first so lastExit is set before the start promise below reports it.
    child.once('exit', (code, signal) => this.onExit(child, code, signal));
    this.ready = new Promise((resolve, reject) => {
      const onReady = (msg: FromRunner) => {
        if (msg.type !== 'ready') return;
        child.off('message', onReady);
        this.state = 'ready';
        this.freshRss = msg.rss;
        this.log.info({ runner_pid: msg.pid, restarts: this.restarts, rss: msg.rss }, 'runner ready');
        resolve();
        this.hooks.ready?.(this.restarts);
      };
      child.on('message', onReady);
      child.once('exit', () => reject(new DwError('DW_ERR_RUNNER_CRASHED', `the runner exited while starting (${this.lastExit})`)));
    });
    this.ready.catch(() => {});
    child.on('message', (msg: FromRunner) => this.onMessage(msg));
    return this.ready;
  }

  private onMessage(msg: FromRunner): void {
    switch (msg.type) {
      case 'event':
        // Runner-wide messages (provider fallbacks) go to the daemon's log; run events to their client.
        if (msg.runId === '') {
          if (msg.event.kind === 'log') this.log[msg.event.level]({ source: 'runner' }, msg.event.message);
        } else {
          const taken = this.pending.get(msg.runId)?.emit(msg.event);
          // An output piece is acknowledged once its client's socket has taken it (or the run is
          // gone), so a slow reader slows the runner instead of piling output up in the daemon.
          if (msg.ack) void Promise.resolve(taken).finally(() => this.send({ type: 'ack', runId: msg.runId }));
        }
        return;
      case 'model': {
        const { type: _, runId, ...report } = msg;
        this.pending.get(runId)?.model?.(report);
        return;
      }
      case 'cached': {
        const { type: _, ...note } = msg;
        this.hooks.cached?.(note);
        return;
      }
      case 'done':
        this.settle(msg.runId)?.resolve(msg.result);
        return;
      case 'failed':
        this.settle(msg.runId)?.reject(DwError.fromPayload(msg.error));
        return;
      case 'snapshot':
      case 'released':
      case 'preloaded':
      case 'pong':
        this.calls.get(msg.reqId)?.(msg);
        this.calls.delete(msg.reqId);
        return;
      case 'ready':
        return;
    }
  }

  private settle(runId: string): Pending | undefined {
    const p = this.pending.get(runId);
    this.pending.delete(runId);
    return p;
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.child) return;
    this.lastExit = signal ? `killed by ${signal}` : `exit code ${code}`;
    this.child = null;
    this.ready = null;
    // Questions the dead runner will never answer (snapshot, preload) get "no runner" now, not at their timeout.
    for (const [reqId, answer] of this.calls) {
      this.calls.delete(reqId);
      answer(null);
    }
    const killedFor = [...this.pending.values()].some((p) => p.killReason);
    const why = killedFor ? 'dwd killed the runner: another run on it did not yield' : `the runner died during the run (${this.lastExit})`;
    for (const [runId, p] of this.pending) {
      p.reject(p.killReason ?? new DwError('DW_ERR_RUNNER_CRASHED', `${why}; it is being restarted`, { exit: this.lastExit }));
      this.pending.delete(runId);
    }
    this.hooks.exited?.(!this.stopping && !this.replacing);
    if (this.stopping) {
      this.state = 'stopped';
      return;
    }
    if (this.replacing) {
      this.replacing = false;
      this.state = 'stopped';
      this.log.info({ exit: this.lastExit }, 'runner replaced by a fresh one');
      // Not a crash: status says what it was.
      this.lastExit = 'replaced by dwd (dw clear, or to give memory back)';
      return;
    }
    const lived = Date.now() - this.startedAt;
    // A runner dwd killed for a run that would not yield did not crash: no backoff for it.
    if (killedFor) this.lastExit = 'killed by dwd: a run did not yield';
    else this.crashStreak = lived > HEALTHY_MS ? 1 : this.crashStreak + 1;
    const delay = BACKOFF_MS[Math.max(0, Math.min(this.crashStreak - 1, BACKOFF_MS.length - 1))]!;
    this.restarts += 1;
    this.state = 'restarting';
    this.log.warn({ exit: this.lastExit, lived_ms: lived, restart_in_ms: delay, restarts: this.restarts }, 'runner exited; restarting');
    this.restartAt = Date.now() + delay;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.start().catch((err: Error) => this.log.error({ err: err.message }, 'runner restart failed'));
    }, delay);
  }

  /**
   * Sends a run to the runner; `cancelled` is asked once the runner is up, right before sending.
   * `model` hears of each session the run gets (runner/ipc.ts ModelReport), before `emit` does.
   */
  async run(
    runId: string,
    plan: Plan,
    emit: EmitEvent,
    cancelled: () => DwError | undefined = () => undefined,
    model?: (report: ModelReport) => void,
  ): Promise<RunnerResult> {
    await this.start();
    const reason = cancelled();
    if (reason) throw reason;
    return new Promise((resolve, reject) => {
      this.pending.set(runId, { emit, model, resolve, reject });
      this.send({ type: 'run', runId, plan, maxResultBytes: this.maxResultBytes });
    });
  }

  /** Up and taking runs (not starting, restarting or stopped). */
  get isReady(): boolean {
    return this.state === 'ready';
  }

  /** Whether the runner has this run. */
  has(runId: string): boolean {
    return this.pending.has(runId);
  }

  /** Asks the runner to abandon a run at its next yield point. */
  cancel(runId: string, reason: ErrorPayload): void {
    if (this.pending.has(runId)) this.send({ type: 'cancel', runId, reason });
  }

  /**
   * Whether the runner's event loop answers within `timeoutMs` (it is not inside a long JavaScript
   * call), and which runs are inside an onnxruntime call; null when it does not answer.
   */
  async answers(timeoutMs = 1000): Promise<{ native: string[] } | null> {
    return this.call<Extract<FromRunner, { type: 'pong' }>>({ type: 'ping' }, timeoutMs);
  }

  /**
   * Gives up on a run that ignored its cancel while its runner's loop stays free (a step awaiting
   * a promise that never settles): it fails with `reason`; the runner, its models and its other
   * runs carry on.
   */
  abandon(runId: string, reason: DwError): void {
    const p = this.settle(runId);
    if (!p) return;
    this.log.warn({ run: runId, reason: reason.message }, 'abandoned a run that does not yield; its runner answers, so it stays');
    this.send({ type: 'forget', runId });
    this.abandoned += 1;
    p.reject(reason);
    this.hooks.abandoned?.();
  }

  /** Kills the runner because a run will not yield (a hung native call); that run fails with `reason`. */
  kill(runId: string, reason: DwError): void {
    const p = this.pending.get(runId);
    if (!p || !this.child) return;
    p.killReason = reason;
    this.log.warn({ run: runId, reason: reason.message }, 'killing the runner: a run did not yield');
    this.child.kill('SIGKILL');
  }

  /** Asks the runner something and waits for its reply; null when there is no runner or it does not answer. */
  private call<R extends FromRunner>(
    msg: DistributiveOmit<Extract<ToRunner, { reqId: number }>, 'reqId'>,
    timeoutMs = 5000,
  ): Promise<R | null> {
    if (!this.child || this.state !== 'ready') return Promise.resolve(null);
    const reqId = ++this.callSeq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.calls.delete(reqId);
        resolve(null);
      }, timeoutMs);
      this.calls.set(reqId, (reply) => {
        clearTimeout(timer);
        resolve(reply as R);
      });
      this.send({ ...msg, reqId } as ToRunner);
    });
  }

  snapshot(): Promise<Extract<FromRunner, { type: 'snapshot' }> | null> {
    return this.call({ type: 'snapshot' });
  }

  /** Loads a session ahead of any run (--prewarm). */
  preload(model: PlanModel, session: SessionOptionsSpec): Promise<Extract<FromRunner, { type: 'preloaded' }> | null> {
    return this.call({ type: 'preload', model, session }, 120_000);
  }

  /** Replaces the runner with a fresh process: the only way to give all of its memory back to the OS. */
  async replace(): Promise<void> {
    const child = this.child;
    if (child) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      this.replacing = true;
      child.kill('SIGKILL');
      await exited;
    }
    await this.start();
  }

  /** Releases sessions in the runner; resolves with its RSS before and after. */
  release(keys: string[]): Promise<Extract<FromRunner, { type: 'released' }> | null> {
    return this.call({ type: 'release', keys });
  }

  status(): Omit<RunnerStatus, 'runs_active' | 'runs_queued' | 'models' | 'cpu_priority'> {
    return {
      index: this.index,
      device: this.device,
      pid: this.child?.pid ?? null,
      state: this.state,
      restarts: this.restarts,
      last_exit: this.lastExit,
      // A runner up and healthy for HEALTHY_MS has no streak any more (the next crash starts one anew).
      crash_streak: this.state === 'ready' && Date.now() - this.startedAt > HEALTHY_MS ? 0 : this.crashStreak,
      next_start_in_ms: this.restartTimer ? Math.max(0, this.restartAt - Date.now()) : null,
      frozen: this.child?.pid ? pidStopped(this.child.pid) : false,
    };
  }

  private send(msg: ToRunner): void {
    this.child?.send(msg, (err) => {
      if (err) this.log.warn({ err: err.message, type: msg.type }, 'could not send to the runner');
    });
  }

  /** Kills the runner at once (the daemon is exiting without a grace period). */
  killNow(): void {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.child?.kill('SIGKILL');
  }

  /** Stops the runner: closes its IPC channel (it exits by itself), then SIGKILL after a grace period. */
  async stop(graceMs = 3000): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.disconnect();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
