// Binds the daemon's socket: from systemd socket activation when it hands one over, otherwise our
// own, in a private directory. A socket or pid file left by a dead daemon is cleared; a live daemon
// is never displaced.
import { chmodSync, closeSync, existsSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import { makeDirs } from '../protocol/dirs.js';
import { DwError } from '../protocol/errors.js';
import { assertValidSocketPath, lockPathFor, uid } from '../protocol/paths.js';
import { pidAlive } from '../protocol/pids.js';


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

function readPid(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
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
  if (!st.isDirectory()) throw new DwError('DW_ERR_USAGE', `${dir} is not a directory; set DW_SOCKET to a path in a directory of your own`, { dir });
  if (st.uid !== uid() && (st.mode & 0o1000) === 0) {
    throw new DwError('DW_ERR_USAGE', `socket directory ${dir} belongs to uid ${st.uid}, not to you (uid ${uid()}); set DW_SOCKET to a path in a directory of your own`, { dir });
  }
}

export interface Bound {
  server: Server;
  socket: string;
  /** Removes what this daemon created (socket, pid file); nothing for an inherited socket. */
  cleanup: () => void;
  activated: boolean;
}

/** systemd passes listening sockets from fd 3 on, with LISTEN_PID naming the process meant to use them. */
function activationFd(env: NodeJS.ProcessEnv): number | null {
  if (env.LISTEN_FDS === undefined || Number(env.LISTEN_PID) !== process.pid) return null;
  if (Number(env.LISTEN_FDS) < 1) return null;
  return 3;
}

async function takeLock(lock: string, socket: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lock, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = readPid(lock);
    if (pid !== null && pid !== process.pid && pidAlive(pid) && (await socketAccepts(socket))) {
      throw new DwError('DW_ERR_USAGE', `dwd is already running (pid ${pid}) on ${socket}; stop it with \`dw stop\` first`, { pid, socket });
    }
    // A pid file without a live, answering daemon behind it is stale.
    unlinkQuiet(lock);
  }
  throw new DwError('DW_ERR_USAGE', `could not take the lock ${lock}: another dwd is starting at the same time`, { lock });
}

export async function bindSocket(socket: string, env: NodeJS.ProcessEnv = process.env): Promise<Bound> {
  const fd = activationFd(env);
  const server = createServer();
  if (fd !== null) {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen({ fd }, resolve));
    return { server, socket, cleanup: () => {}, activated: true };
  }
  assertValidSocketPath(socket);
  ensureSocketDir(dirname(socket));
  const lock = lockPathFor(socket);
  await takeLock(lock, socket);
  try {
    if (await socketAccepts(socket)) {
      throw new DwError('DW_ERR_USAGE', `another process already answers on ${socket}; stop it first or set DW_SOCKET`, { socket });
    }
    unlinkQuiet(socket);
    const oldMask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socket, resolve));
    } finally {
      process.umask(oldMask);
    }
    chmodSync(socket, 0o600);
  } catch (err) {
    unlinkQuiet(lock);
    throw err;
  }
  return {
    server,
    socket,
    activated: false,
    cleanup: () => {
      unlinkQuiet(socket);
      if (readPid(lock) === process.pid) unlinkQuiet(lock);
    },
  };
}
