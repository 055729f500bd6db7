// Finds a daemon to talk to, starting one in the background when none answers (like Gradle, Bazel
// and the Nx daemon). A start lock makes ten parallel `dw` invocations start one daemon, not ten.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, unlinkSync, watch, writeSync } from 'node:fs';
import { dirname, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeDirs } from '../protocol/dirs.js';
import { DwError } from '../protocol/errors.js';
import { defaultLogPath, defaultSocketPath, startLockPathFor, systemSocket } from '../protocol/paths.js';
import { Client } from './client.js';
import type { Request, RequestType, ResultMap } from '../protocol/messages.js';
import { pidAlive } from '../protocol/pids.js';

// Run from source (tsx) the daemon is main.ts; built, the CLI is one CommonJS bundle (dw.cjs) and
// the daemon stays ESM (main.js).
const DWD_ENTRY = fileURLToPath(new URL(`../daemon/main${extname(fileURLToPath(import.meta.url)) === '.ts' ? '.ts' : '.js'}`, import.meta.url));
const START_TIMEOUT_MS = 30_000;


function isNoDaemon(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'ENOTDIR';
}

function unreachable(socket: string, why: string): DwError {
  const how = process.env.DW_AUTOSTART === '0' ? 'or unset DW_AUTOSTART so that dw run starts it' : 'or run a workflow: dw run starts one';
  return new DwError('DW_ERR_DAEMON_UNREACHABLE', `no dwd answers on ${socket} (${why}).\nStart one with \`dwd &\` or \`systemctl --user start dwd\`, ${how}.`, { socket });
}

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Starts dwd detached, logging to the state dir, and resolves when it says it is ready. */
function spawnDaemon(socket: string): Promise<void> {
  const log = defaultLogPath();
  makeDirs(dirname(log));
  const logFd = openSync(log, 'a');
  const child = spawn(process.execPath, [...process.execArgv, DWD_ENTRY], {
    detached: true,
    stdio: ['ignore', logFd, logFd, 'pipe'],
    env: { ...process.env, DW_SOCKET: socket, DWD_READY_FD: '3', DWD_AUTOSTARTED: '1' },
  });
  closeSync(logFd);
  const ready = child.stdio[3]!;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new DwError('DW_ERR_DAEMON_UNREACHABLE', `dwd did not become ready within ${START_TIMEOUT_MS / 1000} s; its log (${log}):\n${tail(log)}`)), START_TIMEOUT_MS);
    const finish = (err?: DwError) => {
      clearTimeout(timer);
      ready.destroy();
      child.removeAllListeners('exit');
      child.unref();
      err ? reject(err) : resolve();
    };
    ready.on('data', (d: Buffer) => d.toString().includes('ready') && finish());
    child.once('exit', (code) => finish(new DwError('DW_ERR_DAEMON_UNREACHABLE', `dwd exited at start (code ${code}); its log (${log}):\n${tail(log)}`)));
  });
}

/** Waits, without spinning, until the socket answers: woken by changes in its directory, and a slow tick in case a change is missed. */
async function waitForSocket(socket: string, startLock: string): Promise<Client> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  const watcher = watch(dirname(socket));
  try {
    while (Date.now() < deadline) {
      try {
        return await Client.connect(socket);
      } catch (err) {
        if (!isNoDaemon(err)) throw err;
      }
      const starter = Number.parseInt(safeRead(startLock), 10);
      if (Number.isInteger(starter) && !pidAlive(starter)) throw new DwError('DW_ERR_DAEMON_UNREACHABLE', 'the dw process starting dwd died');
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
  throw new DwError('DW_ERR_DAEMON_UNREACHABLE', `waited ${START_TIMEOUT_MS / 1000} s for another dw to start dwd on ${socket}; see ${defaultLogPath()}`);
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

async function autostart(socket: string): Promise<Client> {
  makeDirs(dirname(socket), 0o700);
  const startLock = startLockPathFor(socket);
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(startLock, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        return await waitForSocket(socket, startLock);
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
        return await Client.connect(socket);
      } catch (err) {
        if (!isNoDaemon(err)) throw err;
      }
      await spawnDaemon(socket);
      return await Client.connect(socket);
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
  socket: string;
}

/**
 * The socket to use: $DW_SOCKET, else the per-user one, else the system service's when it answers.
 * With `start`, a missing per-user daemon is started; then the hello exchange runs. A daemon this
 * dw family autostarted from another version is replaced; any other mismatch is for the user to fix.
 */
export async function connect(opts: { start: boolean }): Promise<Connected> {
  const socket = defaultSocketPath();
  const allowStart = opts.start && process.env.DW_AUTOSTART !== '0';
  for (let attempt = 0; ; attempt++) {
    const client = await open(socket, allowStart);
    try {
      await client.client.handshake();
      return client;
    } catch (err) {
      client.client.close();
      const e = err as DwError;
      const daemon = e.details?.daemon as { autostarted?: boolean; pid?: number } | undefined;
      if (e.code !== 'DW_ERR_VERSION_MISMATCH') throw e;
      if (!daemon?.autostarted || !allowStart || attempt > 0 || client.socket !== socket) {
        throw new DwError(e.code, `${e.message}.\nRestart it so both match: \`dw stop\` (or \`systemctl restart dwd\`), then run again.`, e.details);
      }
      process.stderr.write(`dw: ${e.message}; restarting the daemon it autostarted\n`);
      await stopDaemon(socket, daemon.pid);
    }
  }
}

async function open(socket: string, allowStart: boolean): Promise<Connected> {
  try {
    return { client: await Client.connect(socket), socket };
  } catch (err) {
    if (!isNoDaemon(err)) throw unreachable(socket, (err as Error).message);
  }
  const system = systemSocket();
  if (!process.env.DW_SOCKET && socket !== system) {
    try {
      return { client: await Client.connect(system), socket: system };
    } catch {}
  }
  if (!allowStart) throw unreachable(socket, 'nothing listens there');
  return { client: await autostart(socket), socket };
}

/**
 * Asks the daemon to stop and waits until it has exited. A daemon takes `stop` after any hello,
 * even one of another version, so this dw can stop a daemon left from before an upgrade.
 */
export async function stopDaemon(socket: string, pid?: number): Promise<void> {
  const client = await Client.connect(socket);
  await client.handshake().catch(() => null);
  const answer = await client.request('stop', {}).catch(() => null);
  await client.closed();
  await waitForExit(answer?.pid ?? pid);
}

/** Waits for a pid that is not our child to go away: no event exists for that, so a short poll. */
export async function waitForExit(pid: number | undefined, timeoutMs = 15_000): Promise<void> {
  if (!pid) return;
  const deadline = Date.now() + timeoutMs;
  while (pidAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
}

/** One request to the daemon (started only if `start`), with the connection closed afterwards. */
export async function ask<T extends RequestType>(type: T, body: Omit<Extract<Request, { type: T }>, 'id' | 'type'>, opts: { start: boolean }): Promise<ResultMap[T]> {
  const { client } = await connect(opts);
  try {
    return await client.request(type, body);
  } finally {
    client.close();
  }
}
