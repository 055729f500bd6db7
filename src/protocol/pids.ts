// Process identity for the daemon's pid file, shared by dw (which names the daemon in errors) and
// dwd (which must never displace a live daemon, nor mistake a recycled pid for one).
import { closeSync, constants, fstatSync, openSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * This process's pid namespace ('0' where /proc does not tell): a pid means a process only within
 * one, and a container sharing /tmp (or a socket's folder) with the host under one uid has its own.
 */
export const PID_NAMESPACE = (() => {
  try {
    return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? '0';
  } catch {
    return '0';
  }
})();

/** Fields 3 on of /proc/PID/stat, or null where /proc does not tell (not Linux, or no such process). */
function procStat(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * True if a process with this pid runs (EPERM: it exists, it just belongs to another user). A
 * zombie does not: a detached daemon's exit is reaped by init, which in some containers takes a
 * second or more.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return procStat(pid)?.[0] !== 'Z';
}

/** Whether the process is stopped by a signal (SIGSTOP, Ctrl-Z, a debugger): it runs nothing until resumed. */
export function pidStopped(pid: number): boolean {
  const state = procStat(pid)?.[0];
  return state === 'T' || state === 't';
}

/**
 * When the process started, in clock ticks since boot (field 22 of /proc/PID/stat), or null where
 * /proc does not tell. A pid and its start time name one process: a later one reusing the pid
 * started later.
 */
export function startTimeOf(pid: number): string | null {
  return procStat(pid)?.[19] ?? null;
}

export interface PidRecord {
  pid: number;
  start: string | null;
}

/** The pid file's content for this process: "PID START\n". */
export function ownPidRecord(): string {
  return `${process.pid} ${startTimeOf(process.pid) ?? '-'}\n`;
}

/** The pid file's record, or null when there is none; read only if it is a regular file (a FIFO there would block). */
export function readPidFile(path: string): PidRecord | null {
  let text: string;
  try {
    const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      if (!fstatSync(fd).isFile()) return null;
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
  const [pidText, start] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  return { pid, start: start && start !== '-' ? start : null };
}

/** Whether the process's command line names dwd, or null where /proc does not tell. */
function looksLikeDwd(pid: number): boolean | null {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((a) => /(^|\/)dwd$|daemon\/main\.[cm]?[jt]s$/.test(a));
  } catch {
    return null;
  }
}

/** Whether the process a pid file names is still running (not merely some process with its pid). */
export function recordAlive(r: PidRecord): boolean {
  if (!pidAlive(r.pid)) return false;
  // A record without a start time (an older dwd's, or no /proc when it was written) cannot tell a
  // reused pid from the daemon: then the process must at least be a dwd, never some user's `sleep`.
  if (r.start === null) return looksLikeDwd(r.pid) ?? true;
  const now = startTimeOf(r.pid);
  return now === null || now === r.start;
}
