// Binds the daemon's socket: from systemd socket activation when it hands one over, otherwise our
// own, in a private directory. A daemon owns exactly the socket and pid file it created: it never
// displaces a live daemon (it waits for one that is shutting down), removes only files that are
// still its own, and stops when its socket path no longer leads to it.
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, linkSync, lstatSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { kindOf } from '../media/read.js';
import { makeDirs } from '../protocol/dirs.js';
import { DwError } from '../protocol/errors.js';
import { assertValidSocketPath, lockPathFor, MAX_SOCKET_PATH, uid } from '../protocol/paths.js';
import { ownPidRecord, readPidFile, recordAlive } from '../protocol/pids.js';

/** Whether something accepts connections on the socket right now. */
export function socketAccepts(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * The socket's directory: created 0700 when it does not exist. An existing one is used as it is
 * (never chmod'ed: it may be /tmp or a project folder), provided it is ours; the socket's own
 * 0600 mode then keeps other users out.
 */
function ensureSocketDir(dir: string): void {
  if (!existsSync(dir)) makeDirs(dir, 0o700);
  const st = statSync(dir);
  if (!st.isDirectory())
    throw new DwError('DW_ERR_USAGE', `${dir} is not a directory; set DW_SOCKET to a path in a directory of your own`, { dir });
  if (st.uid !== uid() && (st.mode & 0o1000) === 0) {
    throw new DwError(
      'DW_ERR_USAGE',
      `socket directory ${dir} belongs to uid ${st.uid}, not to you (uid ${uid()}); set DW_SOCKET to a path in a directory of your own`,
      { dir },
    );
  }
}

export interface Bound {
  server: Server;
  socket: string;
  /** Removes what this daemon created (socket, pid file) if they are still its own; nothing for an inherited socket. */
  cleanup: () => void;
  /** Calls `lost` once if the socket path stops leading to this daemon (removed, or replaced by another file). */
  watchOwnership: (lost: (why: string) => void) => void;
  activated: boolean;
}

/** systemd passes listening sockets from fd 3 on, with LISTEN_PID naming the process meant to use them. */
function activationFd(env: NodeJS.ProcessEnv): number | null {
  if (env.LISTEN_FDS === undefined || Number(env.LISTEN_PID) !== process.pid) return null;
  if (Number(env.LISTEN_FDS) < 1) return null;
  return 3;
}

export interface BindOptions {
  /** How long to wait for a daemon that holds the pid file but no longer answers (it is shutting down). */
  waitMs?: number;
  /** Told once when this daemon has to wait for another one to exit, and for how long at most. */
  waiting?: (pid: number, waitMs: number) => void;
}

/**
 * Creates `path` holding `content`, or returns false if it exists. Written under a private name and
 * hard-linked into place, so no other daemon ever reads it empty (two starting at the same moment
 * once both took the lock: the second read the first's file before its pid was in it).
 */
function createWithContent(path: string, content: string): boolean {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  } finally {
    unlinkQuiet(tmp);
  }
}

/** How long a new daemon waits at most for one that is shutting down (its runs get their grace period). */
const DEFAULT_WAIT_MS = 60_000;

/**
 * Takes the pid file. A live daemon that answers on the socket is never displaced; one that is
 * alive but does not answer is shutting down (or lost its socket and is about to notice): two
 * daemons must never hold one socket path, so this one waits for it to exit.
 */
async function takeLock(lock: string, socket: string, opts: BindOptions): Promise<void> {
  const waitMs = opts.waitMs ?? DEFAULT_WAIT_MS;
  const deadline = Date.now() + waitMs;
  let told = false;
  for (;;) {
    if (createWithContent(lock, ownPidRecord())) return;
    const holder = readPidFile(lock);
    if (holder && holder.pid !== process.pid && recordAlive(holder)) {
      if (await socketAccepts(socket)) {
        throw new DwError('DW_ERR_USAGE', `dwd is already running (pid ${holder.pid}) on ${socket}; stop it with \`dw stop\` first`, {
          pid: holder.pid,
          socket,
        });
      }
      if (Date.now() > deadline) {
        throw new DwError(
          'DW_ERR_USAGE',
          `dwd pid ${holder.pid} holds ${lock} but does not answer on ${socket}, and did not exit within ${Math.round(waitMs / 1000)} s; end it (kill ${holder.pid}) and try again`,
          { pid: holder.pid, socket },
        );
      }
      if (!told) opts.waiting?.(holder.pid, waitMs);
      told = true;
      // No event tells us another process (not our child) ended: a short poll.
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    // A pid file without a live daemon behind it (killed, or its pid reused since) is stale; anything
    // else at its path (a folder, a pipe) is not ours to remove.
    const st = lstatSync(lock, { throwIfNoEntry: false });
    if (st && !st.isFile() && !st.isSymbolicLink())
      throw new DwError('DW_ERR_USAGE', `${lock} is ${kindOf(st)}, not a pid file; remove it, or set DW_SOCKET to another path`, {
        path: lock,
      });
    unlinkQuiet(lock);
  }
}

/**
 * A name beside the socket to bind at, then rename into place. Node (libuv) unlinks the path a
 * server was bound to when it closes; bound at a private name, that unlink can never remove a
 * socket another daemon has since put at the real path. Null when no such name fits sun_path.
 */
function privateBindPath(socket: string): string | null {
  const tmp = join(dirname(socket), `.${basename(socket).slice(0, 12)}.${randomBytes(4).toString('hex')}`);
  return Buffer.byteLength(tmp) <= MAX_SOCKET_PATH ? tmp : null;
}

async function listenAt(server: Server, path: string): Promise<void> {
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve));
  } finally {
    process.umask(oldMask);
  }
  chmodSync(path, 0o600);
}

/** A stale socket is replaced; anything else at the path (a user's file, a folder) never is. */
function refuseNonSocket(path: string): void {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (st.isSocket()) return;
  throw new DwError(
    'DW_ERR_USAGE',
    `${path} is ${kindOf(st)}, not a socket; dwd replaces only a stale socket there. Set DW_SOCKET to another path`,
    {
      socket: path,
    },
  );
}

function sameFile(path: string, id: { dev: number; ino: number }): boolean {
  try {
    const st = lstatSync(path);
    return st.dev === id.dev && st.ino === id.ino;
  } catch {
    return false;
  }
}

/** How often a daemon checks that its socket path still leads to it (Nx's daemon checks every 20 ms). */
const OWNERSHIP_CHECK_MS = 1000;

export async function bindSocket(socket: string, env: NodeJS.ProcessEnv = process.env, opts: BindOptions = {}): Promise<Bound> {
  const fd = activationFd(env);
  const server = createServer();
  if (fd !== null) {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen({ fd }, resolve));
    return { server, socket, cleanup: () => {}, watchOwnership: () => {}, activated: true };
  }
  assertValidSocketPath(socket);
  ensureSocketDir(dirname(socket));
  const lock = lockPathFor(socket);
  await takeLock(lock, socket, opts);
  let id: { dev: number; ino: number };
  try {
    if (await socketAccepts(socket)) {
      throw new DwError('DW_ERR_USAGE', `another process already answers on ${socket}; stop it first or set DW_SOCKET`, { socket });
    }
    refuseNonSocket(socket);
    const tmp = privateBindPath(socket);
    if (tmp) {
      await listenAt(server, tmp);
      id = lstatSync(tmp);
      // Atomic: a dw connecting now finds either the dead socket or this one, never no file.
      renameSync(tmp, socket);
    } else {
      unlinkQuiet(socket);
      await listenAt(server, socket);
      id = lstatSync(socket);
    }
  } catch (err) {
    server.close();
    if (readPidFile(lock)?.pid === process.pid) unlinkQuiet(lock);
    throw err;
  }
  let timer: NodeJS.Timeout | null = null;
  return {
    server,
    socket,
    activated: false,
    watchOwnership: (lost) => {
      timer = setInterval(() => {
        if (sameFile(socket, id)) return;
        clearInterval(timer!);
        lost(existsSync(socket) ? `${socket} was replaced by another file` : `${socket} was removed`);
      }, OWNERSHIP_CHECK_MS);
      timer.unref();
    },
    cleanup: () => {
      if (timer) clearInterval(timer);
      // Only what is still ours: the path may lead to a daemon that replaced this one.
      if (sameFile(socket, id)) unlinkQuiet(socket);
      if (readPidFile(lock)?.pid === process.pid) unlinkQuiet(lock);
    },
  };
}
