// Shortest job first between runners. Two busy runners on the same cores share them evenly, so a
// short run beside a long one on another runner took about twice as long as alone. A runner whose
// run has gone on for a while gets a lower CPU priority (a higher nice value) while a younger run
// is busy on another runner, and its normal priority back when that run ends: the new run gets
// nearly all of the CPU, as an operating system favours tasks that have had little CPU time over
// those that had much. The lowered runner loses only what the young run takes.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';

/** The nice value of a lowered runner: CFS gives a nice-0 thread about seventy times its CPU share. */
export const LOWERED_NICE = 19;

/** How much older than the youngest run elsewhere a runner's run must be to be lowered. */
export const LONG_RUN_MS = 100;

/** How often the priorities are looked at while two runners are busy. */
const TICK_MS = 100;

export interface BusyRunner {
  pid: number | null;
  /** When its youngest run in progress started; null when it has none. */
  since: number | null;
}

/**
 * Which runners to lower now: those whose youngest run started LONG_RUN_MS or more before the
 * youngest run on another runner. Alone, a run keeps its priority (nothing to favour); runs that
 * started about together share the CPU evenly; the youngest run is never lowered.
 */
export function runnersToLower(busy: BusyRunner[], now: number): Set<number> {
  const running = busy.filter((b): b is { pid: number; since: number } => b.pid !== null && b.since !== null);
  const youngest = Math.max(...running.map((b) => b.since));
  return new Set(running.filter((b) => youngest - b.since >= LONG_RUN_MS).map((b) => b.pid));
}

/**
 * Sets the nice value of every thread of a process: on Linux a nice value belongs to a thread,
 * and onnxruntime computes on its own thread pools (os.setPriority(pid) alone reaches only the
 * main thread). False when the process is gone or the change is not allowed for a thread.
 */
export function reniceProcess(pid: number, nice: number): boolean {
  let tids: number[];
  try {
    tids = readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    tids = [pid]; // no /proc (macOS): setpriority there covers the whole process
  }
  let ok = tids.length > 0;
  for (const tid of tids) {
    try {
      setPriority(tid, nice);
    } catch (err) {
      // A thread that ended meanwhile is no failure; a refusal is.
      if ((err as { info?: { code?: string } }).info?.code !== 'ESRCH') ok = false;
    }
  }
  return ok;
}

/**
 * Whether this process may bring a lowered runner back to nice 0: as root (CAP_SYS_NICE), or
 * with RLIMIT_NICE at 20 or more (systemd: LimitNICE=+0). Without it, a lowered runner would stay
 * lowered for good, so priorities are not changed at all.
 */
export function mayRaiseBack(): boolean {
  if (process.getuid?.() === 0) return true;
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max nice priority'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) && soft >= 20;
  } catch {
    return false;
  }
}

export interface PriorityDeps {
  /** Each runner's pid and when its youngest run started. */
  busy: () => BusyRunner[];
  /** False where a lowered runner could not be raised back (mayRaiseBack()), or with one runner. */
  enabled: boolean;
  renice?: (pid: number, nice: number) => boolean;
  /** Told of each change, for the daemon's log; with null when raising a runner back was refused. */
  noted?: (pid: number, nice: number | null) => void;
}

export class CpuPriorities {
  private readonly lowered = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  enabled: boolean;
  private readonly busy: () => BusyRunner[];
  private readonly renice: (pid: number, nice: number) => boolean;
  private readonly noted: (pid: number, nice: number | null) => void;

  constructor(deps: PriorityDeps) {
    this.busy = deps.busy;
    this.enabled = deps.enabled;
    this.renice = deps.renice ?? reniceProcess;
    this.noted = deps.noted ?? (() => {});
  }

  /** The runner's state for dw status. */
  stateOf(pid: number | null): 'normal' | 'lowered' | 'off' {
    if (!this.enabled) return 'off';
    return pid !== null && this.lowered.has(pid) ? 'lowered' : 'normal';
  }

  /** Looks again now (a run started or ended), and keeps looking while two runners are busy. */
  update(now = Date.now()): void {
    if (!this.enabled) return;
    const busy = this.busy();
    const lower = runnersToLower(busy, now);
    for (const pid of [...this.lowered])
      if (!lower.has(pid)) {
        this.lowered.delete(pid);
        if (this.renice(pid, 0)) this.noted(pid, 0);
        else if (existsSync(`/proc/${pid}`)) {
          // Not allowed after all (root in a container without CAP_SYS_NICE): no more changes.
          this.enabled = false;
          this.stop();
          this.noted(pid, null);
          return;
        }
      }
    for (const pid of lower)
      if (!this.lowered.has(pid) && this.renice(pid, LOWERED_NICE)) {
        this.lowered.add(pid);
        this.noted(pid, LOWERED_NICE);
      }
    const watching = busy.filter((b) => b.since !== null).length >= 2;
    if (watching && !this.timer) {
      this.timer = setInterval(() => this.update(), TICK_MS);
      this.timer.unref();
    } else if (!watching && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
