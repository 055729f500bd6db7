// Where the socket, lock and logs live. Shared by dw and dwd so both always agree.
import { isAbsolute, join } from 'node:path';
import { homedir } from 'node:os';
import { DwError } from './errors.js';

/** sun_path is 108 bytes on Linux including the terminating NUL. */
export const MAX_SOCKET_PATH = 107;
/** The system service's socket (systemd/dwd.socket); DW_SYSTEM_SOCKET moves it, for tests and odd installs. */
export function systemSocket(env: NodeJS.ProcessEnv = process.env): string {
  return env.DW_SYSTEM_SOCKET || '/run/dwd/dwd.sock';
}

/**
 * An XDG base directory from the environment, if set to an absolute path. The spec says to ignore
 * a relative one: it would name another folder in each working directory (another daemon, too).
 */
function xdg(env: NodeJS.ProcessEnv, name: 'XDG_RUNTIME_DIR' | 'XDG_STATE_HOME' | 'XDG_CACHE_HOME'): string | undefined {
  const value = env[name];
  return value && isAbsolute(value) ? value : undefined;
}

export function uid(): number {
  return process.getuid?.() ?? 0;
}

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DW_SOCKET) return absoluteSocket(env.DW_SOCKET, 'DW_SOCKET');
  const runtime = xdg(env, 'XDG_RUNTIME_DIR');
  if (runtime) return join(runtime, 'dw', 'dwd.sock');
  return join('/tmp', `dw-${uid()}`, 'dwd.sock');
}

/**
 * A socket path as given: absolute only. A relative one named another socket in each working
 * directory, so each folder a dw ran in got a daemon of its own.
 */
export function absoluteSocket(path: string, what: string): string {
  if (!isAbsolute(path))
    throw new DwError(
      'DW_ERR_USAGE',
      `${what} ${path} is a relative path; give the socket's absolute path, e.g. /tmp/dw-${uid()}/dwd.sock`,
      {
        path,
      },
    );
  return path;
}

export function assertValidSocketPath(path: string): void {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new DwError(
      'DW_ERR_USAGE',
      `socket path is ${Buffer.byteLength(path)} bytes, over the ${MAX_SOCKET_PATH}-byte limit of Unix sockets: ${path}\n` +
        `Set DW_SOCKET to a shorter path, e.g. DW_SOCKET=/tmp/dw-${uid()}/dwd.sock`,
      { path, max: MAX_SOCKET_PATH },
    );
  }
}

/**
 * The pid file that marks a running daemon, named after its socket: two sockets in one directory
 * (two DW_SOCKETs in /tmp) are two daemons, and one's pid file must not make the other wait for it.
 */
export function lockPathFor(socket: string): string {
  return `${socket}.pid`;
}

/** The lock that lets only one of many parallel `dw` invocations start the daemon of this socket. */
export function startLockPathFor(socket: string): string {
  return `${socket}.start.lock`;
}

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(xdg(env, 'XDG_STATE_HOME') ?? join(homedir(), '.local', 'state'), 'dw');
}

/** Where the daemon keeps its step cache: systemd's CacheDirectory for a service, else $XDG_CACHE_HOME/dw/steps. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CACHE_DIRECTORY) return join(env.CACHE_DIRECTORY.split(':')[0]!, 'steps');
  return join(xdg(env, 'XDG_CACHE_HOME') ?? join(homedir(), '.cache'), 'dw', 'steps');
}

export function defaultLogPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(stateDir(env), 'dwd.log');
}
