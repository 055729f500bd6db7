// Where the daemon's log lines go (stdout: the journal, or the log file of an autostarted dwd).
// Logging must never block or stall the daemon: pino's own destination retries a failed write
// every 100 ms for ever on exit (a full disk hung dwd, deaf to SIGTERM). Here writes are
// asynchronous, one at a time; while one is under way lines queue up to a bound; past it, or when
// a write fails (ENOSPC, EIO, EPIPE), lines are dropped and counted, and the first drop is told once.
import { fstatSync, readlinkSync, write, writeSync } from 'node:fs';

/** Bytes of log lines that may wait behind a slow destination before lines are dropped. */
const MAX_QUEUED = 4 * 1024 * 1024;
/** A destination that answers EAGAIN (a full non-blocking pipe) is tried again after this long. */
const RETRY_MS = 50;

export interface LogHealth {
  /** Lines that could not be written since the daemon started. */
  dropped: number;
  /** Why the last of them was dropped (e.g. "ENOSPC: no space left on device"). */
  last_error: string | null;
}

const countLines = (s: string) => s.split('\n').length - 1;

/** The file `fd` writes to, or whether it is systemd's journal (JOURNAL_STREAM names its device and inode). */
function destination(fd: number): { file: string | null; journal: boolean } {
  try {
    const st = fstatSync(fd);
    if (process.env.JOURNAL_STREAM === `${st.dev}:${st.ino}`) return { file: null, journal: true };
    // A file removed while written to reads "PATH (deleted)": dw logs says so.
    const path = st.isFile() ? readlinkSync(`/proc/self/fd/${fd}`) : '';
    return { file: path.startsWith('/') ? path : null, journal: false };
  } catch {
    return { file: null, journal: false };
  }
}

export class LogSink {
  private queue: string[] = [];
  private queued = 0;
  private writing = false;
  private droppedSinceTold = 0;
  /** Waiting for the queue to be written (drain). */
  private idle: Array<() => void> = [];
  private readonly health: LogHealth = { dropped: 0, last_error: null };

  /**
   * @param fd where lines go (1: stdout)
   * @param tell told once, the first time lines are dropped (e.g. a note on stderr)
   */
  constructor(
    private readonly fd: number,
    private readonly tell: (why: string) => void = () => {},
  ) {}

  /** pino's destination interface: one call per JSON line. */
  write(line: string): void {
    if (this.queued + line.length > MAX_QUEUED) return this.drop(1, 'the log destination does not keep up');
    this.queue.push(line);
    this.queued += line.length;
    if (!this.writing) this.pump();
  }

  /** Its health, and where the lines go: asked each time, as a log file may be moved (rotated). */
  get status(): LogHealth & { file: string | null; journal: boolean } {
    return { ...destination(this.fd), ...this.health };
  }

  private drop(lines: number, why: string): void {
    if (this.health.dropped === 0) this.tell(why);
    this.health.dropped += lines;
    this.health.last_error = why;
    this.droppedSinceTold += lines;
  }

  private pump(): void {
    if (this.droppedSinceTold > 0) {
      // The destination took lines again: say in the log itself what is missing from it.
      const n = this.droppedSinceTold;
      this.droppedSinceTold = 0;
      this.queue.unshift(
        `${JSON.stringify({ level: 40, time: new Date().toISOString(), pid: process.pid, dropped: n, reason: this.health.last_error, msg: 'log lines were dropped' })}\n`,
      );
    }
    const text = this.queue.join('');
    this.queue = [];
    this.queued = 0;
    const buf = Buffer.from(text);
    this.writing = true;
    write(this.fd, buf, 0, buf.length, null, (err, n) => {
      this.writing = false;
      if (err?.code === 'EAGAIN') {
        this.requeue(text);
        setTimeout(() => !this.writing && this.pump(), RETRY_MS).unref();
        return;
      }
      if (err) this.drop(countLines(text), `${err.code ?? 'error'}: ${err.message.replace(/^\w+: /, '').replace(/, write$/, '')}`);
      else if (n < buf.length) this.requeue(buf.subarray(n).toString());
      if (this.queue.length > 0) this.pump();
      else this.idle.splice(0).forEach((wake) => wake());
    });
  }

  private requeue(text: string): void {
    this.queue.unshift(text);
    this.queued += text.length;
  }

  /**
   * Before the process exits: one attempt to write what is queued, never a retry (a full disk
   * must not hold the exit). Lines of a write still under way are lost if it never completes.
   */
  flushSync(): void {
    if (this.writing || this.queue.length === 0) return;
    const text = this.queue.join('');
    this.queue = [];
    this.queued = 0;
    try {
      writeSync(this.fd, text);
    } catch {
      this.health.dropped += countLines(text);
    }
  }

  /** Resolves once the queue is written (or after `ms`): a clean exit keeps its last lines. */
  async drain(ms = 500): Promise<void> {
    if (this.writing || this.queue.length > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        this.idle.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.flushSync();
  }
}
