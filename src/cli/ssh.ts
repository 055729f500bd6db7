// The ssh side of DW_HOST=ssh://: `ssh host -- dw dial-stdio` carries the usual protocol over ssh's
// pipes, with ssh's own config, keys and agent; dw keeps its connection up (ControlMaster) and
// the far daemon's socket forwarded for the next dw. Loaded only when DW_HOST is ssh://.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Duplex } from 'node:stream';
import { makeDirs } from '../protocol/dirs.js';
import { EXIT } from '../protocol/errors.js';
import { defaultSocketPath, uid } from '../protocol/paths.js';
import { type Host, remoteDw } from './host.js';
import { FOLLOW_UNTIL_EOF } from './settings.js';

/**
 * Where dw's ssh control sockets and forwards live: beside its socket, unless that folder's path
 * is too long for ssh's control socket (108 bytes with the 40-character %C and ssh's temporary
 * suffix): then a folder of this user's in /tmp.
 */
function sshDir(env: NodeJS.ProcessEnv): string {
  const dir = dirname(defaultSocketPath(env));
  return dir.length <= 40 ? dir : join('/tmp', `dw-ssh-${uid()}`);
}

/** How long an ssh connection dw opened stays up for the next dw (ssh's ControlPersist). */
const PERSIST_S = 300;

/**
 * ssh's options that make later dw commands reuse this one's connection (ControlMaster): an ssh
 * connection costs this host 130-250 ms before the first byte, a reused one a few. Unless the
 * user's own ssh config says how to multiplex (ControlMaster or ControlPath: `ssh -G` tells,
 * without connecting) or DW_SSH_MULTIPLEX=0 says not to.
 */
const multiplexOff = (env: NodeJS.ProcessEnv) => /^(0|false|no|off)$/i.test((env.DW_SSH_MULTIPLEX ?? '').trim());

function multiplexing(host: Extract<Host, { kind: 'ssh' }>, env: NodeJS.ProcessEnv): string[] {
  if (multiplexOff(env)) return [];
  const key = `${host.target}:${host.port}`;
  const known = decided.get(key);
  if (known) return known;
  const options = multiplexingOf(host, env);
  decided.set(key, options);
  return options;
}
/** Once per host and process: `ssh -G` is a process of its own. */
const decided = new Map<string, string[]>();

function multiplexingOf(host: Extract<Host, { kind: 'ssh' }>, env: NodeJS.ProcessEnv): string[] {
  try {
    const effective = execFileSync('ssh', ['-G', ...(host.port ? ['-p', String(host.port)] : []), host.target], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    });
    const set = (key: string) => new RegExp(`^${key} (?!none$|false$)`, 'm').test(effective);
    if (set('controlmaster') || set('controlpath')) return [];
    const dir = sshDir(env);
    makeDirs(dir, 0o700);
    // Control sockets let whoever reaches them use the connection: only in a folder of ours alone.
    const st = statSync(dir);
    if (st.uid !== uid() || (st.mode & 0o077) !== 0) return [];
    return ['-o', 'ControlMaster=auto', '-o', `ControlPath=${join(dir, 'ssh-%C')}`, '-o', `ControlPersist=${PERSIST_S}`];
  } catch {
    return [];
  }
}

/**
 * Where a later dw finds the far daemon's socket forwarded through dw's own ssh connection
 * (`ssh -O forward -L here:there`): a run then costs one hop through the running ssh, with no
 * new session and no `dw dial-stdio` to start there. Null when dw keeps no connection up.
 */
export function forwardPath(host: Extract<Host, { kind: 'ssh' }>, env: NodeJS.ProcessEnv = process.env): string | null {
  if (multiplexOff(env)) return null;
  // The remote dw is part of it: another DW_REMOTE_DW may mean another daemon there.
  const tag = createHash('sha256')
    .update(`${host.target}:${host.port ?? 22}:${remoteDw(env)}`)
    .digest('hex')
    .slice(0, 16);
  return join(sshDir(env), `ssh-fwd-${tag}.sock`);
}

/**
 * Makes dw's ssh connection forward `local` to the daemon's socket `remote` there, in the
 * background, unless it already does. What it forwards to is noted beside the socket (`.to`): a
 * forward to a socket that moved (another daemon) is cancelled first, since ssh would keep it.
 */
export function forwardSocket(
  host: Extract<Host, { kind: 'ssh' }>,
  local: string,
  remote: string,
  env: NodeJS.ProcessEnv = process.env,
): void {
  const note = `${local}.to`;
  let before: string | null = null;
  try {
    before = readFileSync(note, 'utf8');
  } catch {}
  if (before === remote && existsSync(local)) return; // in place: its daemon was only down
  const mux = multiplexing(host, env);
  if (mux.length === 0) return; // the user's own ssh config multiplexes, or nothing does: no connection of dw's to use
  try {
    unlinkSync(local);
  } catch {}
  writeFileSync(note, remote, { mode: 0o600 });
  const base = ['-o', 'BatchMode=yes', ...mux, ...(host.port ? ['-p', String(host.port)] : [])];
  // Rarely needed (the daemon moved), and quick: a message to the running ssh.
  if (before !== null) {
    try {
      execFileSync('ssh', [...base, '-O', 'cancel', '-L', `${local}:${before}`, host.target], { stdio: 'ignore', timeout: 5000 });
    } catch {}
  }
  const child = spawn('ssh', [...base, '-O', 'forward', '-L', `${local}:${remote}`, host.target], { stdio: 'ignore', detached: true });
  child.on('error', () => {});
  child.unref();
}

/** ssh's arguments for running `command` (a remote shell line) on the host. */
export function sshArgs(
  host: Extract<Host, { kind: 'ssh' }>,
  command: string,
  opts: { connectTimeoutMs?: number; tty?: boolean } = {},
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  return [
    opts.tty ? '-t' : '-T',
    // dw never asks for a password: keys and the agent only, and a host it has not seen is refused.
    '-o',
    'BatchMode=yes',
    ...(opts.connectTimeoutMs ? ['-o', `ConnectTimeout=${Math.max(1, Math.ceil(opts.connectTimeoutMs / 1000))}`] : []),
    ...multiplexing(host, env),
    ...(host.port ? ['-p', String(host.port)] : []),
    host.target,
    '--',
    command,
  ];
}

/** What ssh last said on stderr, trimmed (its own message when the host cannot be reached). */
function tail(text: string): string {
  return text.trim().split('\n').slice(-3).join(' / ');
}

/**
 * A pipe to the daemon of `host` through ssh: its stdin and stdout as one stream. `why()` is
 * what ssh said when it ended (an unreachable host, refused keys, no dw there).
 */
export function sshPipe(
  host: Extract<Host, { kind: 'ssh' }>,
  connectTimeoutMs: number,
  start: boolean,
): { stream: Duplex; why: () => string } {
  const command = `${remoteDw()} dial-stdio${start ? '' : ' --no-start'}`;
  const child = spawn('ssh', sshArgs(host, command, { connectTimeoutMs }), { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let exit = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4096)));
  child.stdin.on('error', () => {}); // ssh gone: its exit says why
  const stream = new Duplex({
    read: () => void child.stdout.resume(),
    write: (chunk, _enc, done) => void child.stdin.write(chunk, () => done()),
    final: (done) => void child.stdin.end(done),
    destroy: (err, done) => {
      // dw ending ends ssh (a Ctrl-C'd run has told the daemon to cancel already). Its pipes are
      // let go too: a ControlPersist master that this ssh forked keeps them open for minutes, and
      // an open pipe would keep dw from exiting.
      child.kill();
      for (const s of [child.stdin, child.stdout, child.stderr]) s.destroy();
      child.unref();
      done(err);
    },
  });
  child.stdout.on('data', (d: Buffer) => {
    if (!stream.push(d)) child.stdout.pause();
  });
  child.on('error', (err) => {
    exit = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'ssh is not installed here (no ssh on PATH)' : err.message;
    stream.destroy();
  });
  // Not 'close', which waits for every pipe: a master ssh forked holds them. What ssh said before
  // it exited is read by the next turn of the loop, then the stream ends.
  child.on('exit', (code, signal) => {
    exit ||= `ssh exited with ${signal ?? `code ${code}`}`;
    setTimeout(() => {
      stream.push(null);
      stream.destroy();
    }, 50);
  });
  const why = () => {
    const said = tail(stderr);
    const hint = /command not found|No such file|: not found/.test(said)
      ? ' (set DW_REMOTE_DW to the remote dw, e.g. DW_REMOTE_DW=/usr/local/bin/dw)'
      : '';
    return [exit, said].filter(Boolean).join(': ') + hint;
  };
  return { stream, why };
}

/** A word for the remote shell: single-quoted unless plainly safe. */
export function shellWord(w: string): string {
  return /^[A-Za-z0-9_./=:@%+-]+$/.test(w) ? w : `'${w.replaceAll("'", "'\\''")}'`;
}

/** Runs `dw ARGS` on the ssh host with this terminal (`dw logs` there reads that host's log); resolves with its exit code. */
export function runRemote(host: Extract<Host, { kind: 'ssh' }>, args: string[], opts: { follow?: boolean } = {}): Promise<number> {
  const tty = process.stdout.isTTY === true && process.stdin.isTTY === true;
  // With a terminal, ssh passes Ctrl-C on as a key and the far dw stops itself. Without one, dw
  // holds ssh's standard input and closes it on Ctrl-C: the far dw sees it end and stops.
  const lifeline = opts.follow === true && !tty;
  // exec: the far login shell becomes dw, so a Ctrl-C passed on through a terminal ends dw alone
  // (its exit code comes back) instead of killing the shell too, which ssh reports as 255. env sets
  // the variable in any login shell (tcsh has no VAR=value prefix).
  const command = ['exec', ...(lifeline ? ['env', `${FOLLOW_UNTIL_EOF}=1`] : []), remoteDw(), ...args.map(shellWord)].join(' ');
  const child = spawn('ssh', sshArgs(host, command, { tty }), { stdio: [lifeline ? 'pipe' : 'inherit', 'inherit', 'inherit'] });
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
    child.stdin?.end();
  };
  if (lifeline) process.on('SIGINT', onSigint);
  return new Promise((resolve) => {
    child.on('error', () => resolve(255));
    child.on('close', (code, signal) => {
      process.off('SIGINT', onSigint);
      // ssh itself got the Ctrl-C too and says 255: stopping a follow is no failure (as here).
      resolve(interrupted ? EXIT.OK : (code ?? (signal ? 128 + 2 : 255)));
    });
  });
}
