// Finds a daemon to talk to, starting one in the background when none answers (like Gradle, Bazel
// and the Nx daemon). A start lock makes ten parallel `dw` invocations start one daemon, not ten.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, unlinkSync, watch, writeSync } from 'node:fs';
import { dirname, extname } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { makeDirs } from '../protocol/dirs.js';
import { DwError, isErrorCode, type ErrorPayload } from '../protocol/errors.js';
import type { HelloResult, Request, RequestType, ResultMap, RunEvent } from '../protocol/messages.js';
import { defaultLogPath, defaultSocketPath, lockPathFor, startLockPathFor, systemSocket, uid } from '../protocol/paths.js';
import { PID_NAMESPACE, pidAlive, readPidFile, recordAlive } from '../protocol/pids.js';
import { Client, type SendOptions } from './client.js';
import type { Sent } from './send-files.js';
import { hostSetting } from './host.js';
import { linesOf } from './log-lines.js';
import { autostartAllowed, byContentForced, connectTimeoutMs, dwCommand, dwdCommand } from './settings.js';

// Run from source (tsx) the daemon is main.ts; built, the CLI is one CommonJS bundle (dw.cjs) and
// the daemon stays ESM (main.js).
const DWD_ENTRY = fileURLToPath(
  new URL(`../daemon/main${extname(fileURLToPath(import.meta.url)) === '.ts' ? '.ts' : '.js'}`, import.meta.url),
);
/** How long a starting dwd may stay silent on its ready pipe. */
const START_TIMEOUT_MS = 30_000;
/**
 * How long a dw waits for another one that is starting dwd: as long as that one may take, which
 * includes its dwd waiting (up to 60 s, listen.ts) for a previous daemon to finish stopping.
 */
const STARTER_PATIENCE_MS = 60_000 + START_TIMEOUT_MS + 5_000;

/**
 * glibc's dynamic mmap threshold rises after a large block is freed; later blocks of that size then
 * come from the heap and stay there. A fixed one keeps the daemon's memory from ratcheting up
 * after it relays large results (the runner gets the same; the systemd units set it too).
 */
const DAEMON_MALLOC = { MALLOC_MMAP_THRESHOLD_: String(128 * 1024), MALLOC_ARENA_MAX: '2' };

/** Where dw tells the user what it did on their behalf (started a daemon, waits for one). */
export type Notify = (line: string) => void;
const toStderr: Notify = (line) => process.stderr.write(`${line}\n`);

function isNoDaemon(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'ENOTDIR';
}

/** Why nobody answers on `socket`, and what to do about it, from where the user is. */
function unreachable(socket: string, why: string): DwError {
  const holder = readPidFile(lockPathFor(socket));
  if (holder && recordAlive(holder)) {
    // A deadline set far too short is the likelier cause than a stuck daemon: say so first.
    const short =
      connectTimeoutMs() < 1000 ? ` DW_CONNECT_TIMEOUT=${process.env.DW_CONNECT_TIMEOUT} allows it only ${connectTimeoutMs()} ms; or` : '';
    return new DwError(
      'DW_ERR_DAEMON_UNREACHABLE',
      `dwd (pid ${holder.pid}) holds ${socket} but does not accept connections (${why}):${short} it is shutting down, or stuck. Try again in a moment, or end it with \`kill ${holder.pid}\``,
      { socket, pid: holder.pid },
    );
  }
  const how = autostartAllowed()
    ? `or run a workflow: ${dwCommand()} run starts one`
    : `or unset DW_AUTOSTART so that ${dwCommand()} run starts it`;
  return new DwError(
    'DW_ERR_DAEMON_UNREACHABLE',
    `no dwd answers on ${socket} (${why}).\nStart one with \`${dwdCommand()} &\` or \`systemctl --user start dwd\`, ${how}.`,
    { socket },
  );
}

/** The failing daemon's own log lines (not those of earlier daemons that shared the log). */
function failure(message: string, log: string, offset: number, pid: number | undefined, details: Record<string, unknown> = {}): DwError {
  const lines = linesOf(log, offset, pid);
  const shown = lines.length > 0 ? `\nits log (${log}):\n${lines.map((l) => `  ${l}`).join('\n')}` : `\nits log: ${log}`;
  return new DwError('DW_ERR_DAEMON_UNREACHABLE', `${message}${shown}`, { log, ...details });
}

/** The log file, opened for appending, or null when it cannot be (a full or read-only disk): dwd then starts without one. */
function openLog(log: string, notify: Notify): number | null {
  try {
    makeDirs(dirname(log));
    return openSync(log, 'a');
  } catch (err) {
    notify(
      `dw: cannot open dwd's log ${log} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); starting dwd without a log`,
    );
    return null;
  }
}

/**
 * Starts dwd detached, logging to the state dir, and resolves with its pid when it says it is
 * ready. It tells why it could not start on the same pipe, so the reason reaches the user even
 * when its log cannot be written.
 */
async function spawnDaemon(socket: string, notify: Notify): Promise<{ pid: number; logged: boolean }> {
  // Loaded here, not at start: a dw that finds its daemon running (nearly every one) never needs them.
  const [{ spawn }, { createInterface }] = await Promise.all([import('node:child_process'), import('node:readline')]);
  const log = defaultLogPath();
  const logFd = openLog(log, notify);
  const offset = logFd === null ? 0 : fstatSync(logFd).size;
  const out = logFd ?? 'ignore';
  const child = spawn(process.execPath, [...process.execArgv, DWD_ENTRY], {
    detached: true,
    stdio: ['ignore', out, out, 'pipe'],
    env: { ...DAEMON_MALLOC, ...process.env, DW_SOCKET: socket, DWD_READY_FD: '3', DWD_AUTOSTARTED: '1' },
  });
  if (logFd !== null) closeSync(logFd);
  const ready = child.stdio[3] as Readable;
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout;
    const patience = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        // A daemon that never became ready holds the socket's lock for nothing: end it.
        child.kill('SIGTERM');
        finish(
          failure(
            `dwd (pid ${child.pid}) did not become ready within ${Math.round(ms / 1000)} s, so dw stopped it`,
            log,
            offset,
            child.pid,
          ),
        );
      }, ms);
    };
    const finish = (err?: DwError) => {
      clearTimeout(timer);
      ready.destroy();
      child.removeAllListeners('exit');
      child.unref();
      err ? reject(err) : resolve({ pid: child.pid!, logged: logFd !== null });
    };
    patience(START_TIMEOUT_MS);
    createInterface({ input: ready }).on('line', (line) => {
      const [word, rest] = [line.split(' ', 1)[0], line.slice(line.indexOf(' ') + 1)];
      if (word === 'ready') return finish();
      if (word === 'waiting') {
        const { pid, wait_ms } = JSON.parse(rest) as { pid: number; wait_ms?: number };
        notify(`dw: waiting for dwd pid ${pid}, which holds the socket but does not answer (stopping, or still starting), to exit`);
        return patience((wait_ms ?? 60_000) + START_TIMEOUT_MS);
      }
      if (word === 'error') {
        const e = JSON.parse(rest) as ErrorPayload;
        finish(
          failure(`could not start dwd: ${e.message}`, log, offset, undefined, {
            daemon_error: { code: isErrorCode(e.code) ? e.code : 'DW_ERR_INTERNAL', message: e.message },
          }),
        );
      }
    });
    child.once('exit', (code, signal) =>
      finish(failure(`dwd exited at start (${signal ? `killed by ${signal}` : `exit code ${code}`})`, log, offset, child.pid)),
    );
  });
}

/** Waits, without spinning, until the socket answers: woken by changes in its directory, and a slow tick in case a change is missed. */
async function waitForSocket(socket: string, startLock: string, timeoutMs: number): Promise<Client> {
  const deadline = Date.now() + STARTER_PATIENCE_MS;
  const watcher = watch(dirname(socket));
  try {
    while (Date.now() < deadline) {
      try {
        return await Client.connect(socket, timeoutMs);
      } catch (err) {
        if (!isNoDaemon(err)) throw err;
      }
      const starter = Number.parseInt(safeRead(startLock), 10);
      if (Number.isInteger(starter) && !pidAlive(starter))
        throw new DwError('DW_ERR_DAEMON_UNREACHABLE', 'the dw process starting dwd died');
      await new Promise<void>((resolve) => {
        const tick = setTimeout(resolve, 200);
        watcher.once('change', () => {
          clearTimeout(tick);
          resolve();
        });
      });
    }
  } finally {
    watcher.close();
  }
  throw new DwError(
    'DW_ERR_DAEMON_UNREACHABLE',
    `waited ${STARTER_PATIENCE_MS / 1000} s for another dw to start dwd on ${socket}; see ${defaultLogPath()}`,
  );
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

async function autostart(socket: string, notify: Notify, timeoutMs: number): Promise<Client> {
  makeDirs(dirname(socket), 0o700);
  const startLock = startLockPathFor(socket);
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(startLock, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        return await waitForSocket(socket, startLock, timeoutMs);
      } catch (waitErr) {
        // The starter died without cleaning up: its lock is stale, take over.
        const pid = Number.parseInt(safeRead(startLock), 10);
        if (Number.isInteger(pid) && !pidAlive(pid)) {
          try {
            unlinkSync(startLock);
          } catch {}
          continue;
        }
        throw waitErr;
      }
    }
    try {
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      // Someone may have finished starting dwd between our connect and the lock.
      try {
        return await Client.connect(socket, timeoutMs);
      } catch (err) {
        if (!isNoDaemon(err)) throw err;
      }
      const { pid, logged } = await spawnDaemon(socket, notify);
      notify(`dw: started dwd (pid ${pid}) in the background; ${logged ? `its log: ${defaultLogPath()}` : 'it has no log'}`);
      return await Client.connect(socket, timeoutMs);
    } finally {
      try {
        unlinkSync(startLock);
      } catch {}
    }
  }
  throw unreachable(socket, 'could not take the start lock');
}

export interface Connected {
  client: Client;
  /** The socket's path, or the ssh:// URL. */
  socket: string;
  /**
   * Whether this daemon gets the files of a run by content rather than opening their paths: always
   * through ssh (the far side may be another user, another machine), and for a daemon of another
   * user here (the system service), which may not read them.
   */
  byContent: boolean;
}

/**
 * The socket to use: $DW_SOCKET, else the per-user one, else the system service's when it answers.
 * With `start`, a missing per-user daemon is started; then the hello exchange runs. A daemon this
 * dw family autostarted from another version is replaced; any other mismatch is for the user to fix.
 */
export async function connect(opts: { start: boolean; notify?: Notify; anyVersion?: boolean; timeoutMs?: number }): Promise<Connected> {
  const host = hostSetting();
  // The far side's dw dial-stdio starts a daemon there as any dw would.
  if (host?.kind === 'ssh') return (await import('./ssh-connect.js')).connectSsh(host, opts.start, opts.anyVersion);
  const socket = defaultSocketPath();
  const notify = opts.notify ?? toStderr;
  const allowStart = opts.start && autostartAllowed();
  const timeoutMs = Math.min(opts.timeoutMs ?? Infinity, connectTimeoutMs());
  for (let attempt = 0; ; attempt++) {
    const client = await open(socket, allowStart, notify, timeoutMs);
    try {
      const hello = await client.client.handshake();
      return { ...client, byContent: hello.uid !== uid() || byContentForced() };
    } catch (err) {
      client.client.close();
      const e = err as DwError;
      const daemon = e.details?.daemon as { autostarted?: boolean; pid?: number } | undefined;
      if (e.code !== 'DW_ERR_VERSION_MISMATCH') throw e;
      if (!daemon?.autostarted || !allowStart || attempt > 0 || client.socket !== socket) {
        throw new DwError(
          e.code,
          `${e.message}.\nRestart it so both match: \`dw stop\` (or \`systemctl restart dwd\`), then run again.`,
          e.details,
        );
      }
      notify(`dw: ${e.message}; restarting the daemon it autostarted`);
      await stopDaemon(socket, daemon.pid);
    }
  }
}

async function open(socket: string, allowStart: boolean, notify: Notify, timeoutMs: number): Promise<Omit<Connected, 'byContent'>> {
  try {
    return { client: await Client.connect(socket, timeoutMs), socket };
  } catch (err) {
    if (!isNoDaemon(err)) throw unreachable(socket, (err as Error).message);
  }
  const system = systemSocket();
  if (!process.env.DW_SOCKET && socket !== system) {
    try {
      return { client: await Client.connect(system, timeoutMs), socket: system };
    } catch {}
  }
  if (!allowStart) throw unreachable(socket, 'nothing listens there');
  return { client: await autostart(socket, notify, timeoutMs), socket };
}

/** Past its grace period, how long dwd may take to stop its runner and exit before dw says so. */
const STOP_SLACK_MS = 10_000;

/**
 * Asks the daemon to stop and waits until it has exited. A daemon takes `stop` after any hello,
 * even one of another version, so this dw can stop a daemon left from before an upgrade.
 * Resolves with the daemon's pid; rejects if it did not exit in time.
 */
export async function stopDaemon(socket: string, pid?: number): Promise<number | undefined> {
  const timeoutMs = connectTimeoutMs();
  const client = await Client.connect(socket, timeoutMs);
  try {
    // A daemon of another version still says who it is, in the mismatch's details.
    const hello = await client.handshake().catch((err: DwError) => {
      if (err.code !== 'DW_ERR_VERSION_MISMATCH') throw err;
      return err.details?.daemon as Partial<HelloResult> | undefined;
    });
    const answer = await client.request('stop', {}, undefined, { deadlineMs: 2 * timeoutMs });
    const which = answer.pid ?? pid;
    const patience = (answer.grace_ms ?? 10_000) + STOP_SLACK_MS;
    // In another pid namespace its pid is another process here (often init): its closing the
    // connection and removing its socket, the last it does, say it stopped.
    const ns = hello?.pid_ns;
    if (ns !== undefined && ns !== PID_NAMESPACE) {
      if (!(await socketGone(client, socket, patience)))
        throw new DwError(
          'DW_ERR_DAEMON_UNREACHABLE',
          `dwd (pid ${which} in another pid namespace) took the stop request but has not finished stopping after its grace period`,
          { pid: which },
        );
      return which;
    }
    if (!(await waitForExit(which, patience))) {
      throw new DwError(
        'DW_ERR_DAEMON_UNREACHABLE',
        `dwd (pid ${which}) took the stop request but has not exited after its grace period; end it with \`kill ${which}\``,
        { pid: which },
      );
    }
    return which;
  } finally {
    client.close();
  }
}

/** Polls (no event exists for these) until `gone` holds; false if it did not by the deadline. */
async function until(gone: () => boolean, deadline: number): Promise<boolean> {
  while (!gone() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  return gone();
}

/** Waits for dwd to close the connection and then remove its socket; false if it did not in time. */
async function socketGone(client: Client, socket: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  await Promise.race([client.closed(), new Promise<void>((r) => setTimeout(r, timeoutMs).unref())]);
  return until(() => !existsSync(socket), deadline);
}

/** Waits for a pid that is not our child to go away; false if it did not in time. */
export async function waitForExit(pid: number | undefined, timeoutMs = 15_000): Promise<boolean> {
  return !pid || until(() => !pidAlive(pid), Date.now() + timeoutMs);
}

/** How long status, memory, validate and clear may take at most, heartbeats or not: a daemon stuck in a bug must not hang a script. */
const REQUEST_DEADLINES: Partial<Record<RequestType, number>> = { status: 30_000, memory: 60_000, validate: 120_000 };

/** What a request that takes files by content names: its workflow, --arg values and where they are relative to. */
export interface FilesNamedBy {
  workflow: string;
  args?: Record<string, string>;
  cwd?: string;
}

/**
 * The onEvent that answers a run's or validation's `need` events, passing the others on to `next`
 * (send-files.ts is loaded only for runs by content: a local run never needs it).
 */
export async function filesAnswer(
  client: Client,
  target: () => number,
  note: Notify,
  named: FilesNamedBy,
  next?: (e: RunEvent) => void,
  sent?: Sent,
): Promise<(e: RunEvent) => void> {
  const { Named, sendingFiles } = await import('./send-files.js');
  return sendingFiles(client, target, note, new Named(named.workflow, named.args ?? {}, named.cwd ?? process.cwd()), next, sent);
}

/**
 * One request to the daemon (started only if `start`), with the connection closed afterwards.
 * With `files`, a daemon that takes files by content gets them so (the request says by_content).
 */
export async function ask<T extends RequestType>(
  type: T,
  body: Omit<Extract<Request, { type: T }>, 'id' | 'type'>,
  opts: { start: boolean; notify?: Notify; onEvent?: (e: RunEvent) => void; files?: boolean },
): Promise<ResultMap[T]> {
  const { client, byContent } = await connect(opts);
  const send: SendOptions = REQUEST_DEADLINES[type] ? { deadlineMs: REQUEST_DEADLINES[type] } : {};
  try {
    if (!(opts.files && byContent)) return await client.request(type, body, opts.onEvent, send);
    const req = client.send(
      type,
      { ...body, by_content: true },
      await filesAnswer(client, (): number => req.id, opts.notify ?? toStderr, body as unknown as FilesNamedBy, opts.onEvent),
      send,
    );
    return await req.done;
  } finally {
    client.close();
  }
}
