// dw's own settings, all from the environment, in one place (dwd's are in daemon/config.ts), and how
// to name dw and dwd in a hint so that the command works from where the user is.
import { DwError } from '../protocol/errors.js';
import { realpathSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { parseDuration } from '../protocol/units.js';

/**
 * Set by a dw on the far side of ssh for the `dw logs -f` it starts there (ssh.ts runRemote): that
 * follow ends when its standard input does. Without a terminal, Ctrl-C here ends the local ssh but
 * not the command it started, which went on following the log there for good (and, through a
 * shared connection, kept this dw waiting on its output). Not for users: not in ENV_DOCS.
 */
export const FOLLOW_UNTIL_EOF = 'DW_LOGS_UNTIL_EOF';

export const ENV_DOCS: Array<[string, string]> = [
  [
    'DW_SOCKET',
    "socket of the daemon, an absolute path (default: $XDG_RUNTIME_DIR/dw/dwd.sock, else /tmp/dw-$UID/dwd.sock;\nthe system service's /run/dwd/dwd.sock is used when no per-user daemon runs)",
  ],
  [
    'DW_HOST',
    'the daemon to use: ssh://[user@]host[:port] runs `dw dial-stdio` there through ssh\n(your ssh config, keys and agent; files travel by content), or unix:///path for a local socket',
  ],
  [
    'DW_SSH_MULTIPLEX',
    "0: a new ssh connection for every dw command (default: dw's ssh connection stays up 5 min\nfor the next, unless your ssh config sets ControlMaster or ControlPath)",
  ],
  ['DW_REMOTE_DW', 'the dw command on the ssh host, when its PATH lacks dw (default: dw)'],
  [
    'DW_BY_CONTENT',
    '1: send files by content even to a daemon of your own here (to measure it; default:\nonly to one through ssh or of another user)',
  ],
  ['DW_AUTOSTART', '0, false, no or off: never start a daemon; fail with exit code 4 instead'],
  [
    'DW_CONNECT_TIMEOUT',
    'how long dw waits for the daemon to answer: to connect and greet, and between\nits messages during a request (it sends one every second); default 5s',
  ],
];

/** Whether dw may start a daemon when none answers: DW_AUTOSTART=0/false/no/off says not. */
export function autostartAllowed(env: NodeJS.ProcessEnv = process.env): boolean {
  const raw = (env.DW_AUTOSTART ?? '').trim();
  if (raw === '' || /^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  // A typo must not mean the opposite of what was meant.
  throw new DwError(
    'DW_ERR_USAGE',
    `DW_AUTOSTART=${raw}: write 0, false, no or off to turn autostart off (1, true, yes or on, or unset, for on)`,
  );
}

/** DW_BY_CONTENT=1: files by content even where the daemon could open them (the bench compares both). */
export function byContentForced(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(1|true|yes|on)$/i.test((env.DW_BY_CONTENT ?? '').trim());
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

export function connectTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.DW_CONNECT_TIMEOUT;
  if (raw === undefined || raw.trim() === '') return DEFAULT_CONNECT_TIMEOUT_MS;
  return parseDuration(raw, 'DW_CONNECT_TIMEOUT');
}

function onPath(name: string, target: string | null, env: NodeJS.ProcessEnv): boolean {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      const found = join(dir, name);
      if (!statSync(found).isFile()) continue;
      if (target === null || realpathSync(found) === target) return true;
    } catch {}
  }
  return false;
}

const viaNpx = (env: NodeJS.ProcessEnv) => env.npm_lifecycle_event === 'npx' || env.npm_command === 'exec';

/**
 * How the user can run dw from here: `dw` when it is on PATH, `npx dw` when they ran it so (after
 * `npm ci` the project's dw is not on PATH), else the path they ran.
 */
export function dwCommand(env: NodeJS.ProcessEnv = process.env): string {
  if (viaNpx(env)) return 'npx dw';
  const self = process.argv[1] ?? 'dw';
  let real: string | null = null;
  try {
    real = realpathSync(self);
  } catch {}
  return onPath('dw', real, env) ? 'dw' : self;
}

/** The same for dwd (its entry sits beside dw's: dist/daemon/main.js). */
export function dwdCommand(env: NodeJS.ProcessEnv = process.env): string {
  if (viaNpx(env)) return 'npx dwd';
  if (onPath('dwd', null, env) && dwCommand(env) === 'dw') return 'dwd';
  try {
    return join(dirname(dirname(realpathSync(process.argv[1] ?? ''))), 'daemon', 'main.js');
  } catch {
    return 'dwd';
  }
}
