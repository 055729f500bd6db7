// How a runner process is started and cleaned up after: its environment and V8 flags, a private
// temporary folder, and its stdout/stderr turned into the daemon's JSON log records.
import { fork, type ChildProcess } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PID_NAMESPACE, pidAlive } from '../protocol/pids.js';
import type { Logger } from './log.js';

// dist/daemon/runner-process.js forks dist/runner/main.js; under tsx, src/…/main.ts with the same loader.
const RUNNER_ENTRY = fileURLToPath(new URL(`../runner/main${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

/**
 * glibc raises its mmap threshold each time a large block is freed, after which the runner's
 * large tensors (megabytes per recogniser batch) come from heap arenas that are never returned:
 * RSS creeps up over hundreds of warm runs. A fixed threshold keeps large blocks in mmap, which
 * free() gives back at once. Values the user sets win.
 */
function runnerEnv(tmp: string | null, device: string | null): NodeJS.ProcessEnv {
  // TMPDIR: onnxruntime-node 1.30 leaves an empty mat-debug-PID.log in the temporary folder at
  // every start; a private folder, removed when the runner exits, keeps /tmp clean.
  const env = { MALLOC_MMAP_THRESHOLD_: String(128 * 1024), MALLOC_ARENA_MAX: '2', ...process.env, DW_RUNNER_DEVICE: device ?? '' };
  return tmp ? { ...env, TMPDIR: tmp, DW_RUNNER_TMPDIR: tmp } : env;
}

/**
 * The runner's private temporary folder, or null when none can be made (TMPDIR names a folder
 * that is gone, a full disk): the runner then starts without one, which costs a stray log file,
 * where failing here cost the daemon.
 */
function privateTmp(log: Logger): string | null {
  for (const base of [tmpdir(), '/tmp']) {
    sweep(base);
    try {
      return mkdtempSync(join(base, `dw-runner-${PID_NAMESPACE}-${process.pid}-`));
    } catch (err) {
      log.warn(
        { dir: base, err: (err as NodeJS.ErrnoException).code ?? (err as Error).message },
        'cannot make the runner a temporary folder there',
      );
    }
  }
  return null;
}

/**
 * Removes the folders of runners whose daemon is gone: when a daemon and its runner are both
 * killed at once (kill -9 of the process group, an OOM kill), neither is left to remove its folder.
 * A folder names its daemon's pid namespace and pid; only this user's, of this namespace, are touched.
 */
function sweep(base: string): void {
  let names: string[];
  try {
    names = readdirSync(base).filter((n) => n.startsWith(`dw-runner-${PID_NAMESPACE}-`));
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(/^dw-runner-\d+-(\d+)-/.exec(name)?.[1]);
    if (!(pid > 0) || pid === process.pid || pidAlive(pid)) continue;
    const dir = join(base, name);
    try {
      if (lstatSync(dir).uid === process.getuid?.()) rmSync(dir, { recursive: true, force: true });
    } catch {}
  }
}

/**
 * --expose-gc: the runner collects its garbage when it goes idle (runner/idle-gc.ts).
 * --max-semi-space-size=2: a run allocates tens of megabytes of short-lived tensors; left alone,
 * V8 answers by growing its young generation run after run (heap 15 → 40 MB over 200 runs here),
 * memory it never gives back. Capped, the heap stayed at 12 MB over the same runs.
 */
const RUNNER_V8_FLAGS = ['--expose-gc', '--max-semi-space-size=2'];

/** Longest line of runner output kept in one log record. */
const MAX_LINE = 4000;

// onnxruntime colours its own messages for a terminal; the log is JSON, read by people and tools.
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

/** Every line a runner prints (onnxruntime's native messages, a plugin's console.log) as a log record. */
function capture(child: ChildProcess, log: Logger): void {
  for (const [stream, level] of [
    ['stdout', 'info'],
    ['stderr', 'warn'],
  ] as const) {
    const input = child[stream];
    if (!input) continue;
    createInterface({ input, crlfDelay: Infinity }).on('line', (raw) => {
      const line = raw.replace(ANSI, '').trimEnd();
      if (line !== '')
        log[level]({ source: 'runner', runner_pid: child.pid, stream }, line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line);
    });
  }
}

/** `device`: the runner's pinned device (runner/providers.ts runnerDevice), or null for any. */
export function forkRunner(log: Logger, device: string | null): ChildProcess {
  const tmp = privateTmp(log);
  const child = fork(RUNNER_ENTRY, [], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'advanced',
    env: runnerEnv(tmp, device),
    execArgv: [...process.execArgv, ...RUNNER_V8_FLAGS],
  });
  capture(child, log);
  // The runner removes it too when it exits (runner/main.ts): whichever of the two outlives the other.
  if (tmp) child.once('exit', () => rmSync(tmp, { recursive: true, force: true }));
  return child;
}
