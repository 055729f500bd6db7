// A real OpenSSH server on 127.0.0.1 for the remote tests (Debian's openssh-server; .ci/run
// installs it), with keys made here, and what a user of DW_HOST=ssh:// has: an ssh on PATH that
// reads their config (here a wrapper adding -F), a key, and a remote account with dw installed.
// Accounts other than the test's own are made with useradd, so those tests need root.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './env.js';

export const SSHD = '/usr/sbin/sshd';

/** Why the ssh tests cannot run here, or null when they can. */
export function sshMissing(): string | null {
  if (!existsSync(SSHD)) return `no ${SSHD} (apt-get install openssh-server; .ci/run does)`;
  try {
    execFileSync('ssh', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'no ssh client on PATH';
  }
  return null;
}

/** Why another local account cannot be made here, or null. */
export function otherUserMissing(): string | null {
  if (process.getuid?.() !== 0) return 'making another user needs root';
  try {
    execFileSync('sh', ['-c', 'command -v useradd && command -v runuser'], { stdio: 'ignore' });
  } catch {
    return 'no useradd/runuser';
  }
  return null;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** A local account for the remote side, made once (useradd), with a home of its own. */
export function ensureUser(name: string): { uid: number; gid: number; home: string } {
  try {
    execFileSync('id', ['-u', name], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-m', '-s', '/bin/sh', name], { stdio: 'ignore' });
  }
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
  return { uid, gid, home: `/home/${name}` };
}

/**
 * dw installed where any account can read it: this checkout's package.json, dist, node_modules and workflows,
 * hard-linked (a copy where links cannot be made) into a world-readable folder, as a package
 * installed under /usr/lib would be. The checkout itself may sit in a folder only its owner reads.
 */
export function sharedInstall(): { dir: string; dw: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'dw-install-'));
  chmodSync(dir, 0o755);
  const linkTree = (from: string, to: string) => {
    mkdirSync(to, { recursive: true, mode: 0o755 });
    for (const name of readdirSync(from)) {
      const src = join(from, name);
      const dst = join(to, name);
      const st = lstatSync(src);
      // Symlinks as they are (node_modules/dw points back at the package, relatively).
      if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dst);
      else if (st.isDirectory()) linkTree(src, dst);
      else {
        try {
          linkSync(src, dst);
        } catch {
          cpSync(src, dst);
        }
      }
    }
  };
  for (const part of ['dist', 'node_modules', 'workflows']) linkTree(join(ROOT, part), join(dir, part));
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  return {
    dir,
    dw: `${process.execPath} ${join(dir, 'dist', 'cli', 'dw.cjs')}`,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface Sshd {
  port: number;
  dir: string;
  /** PATH with the ssh wrapper first: `ssh` there reads this server's client config. */
  path: string;
  /** DW_HOST for `user` on this server. */
  url(user: string): string;
  stop(): Promise<void>;
}

/** Starts sshd on a free loopback port; `users` may log in with the key made here. */
export async function startSshd(users: Array<{ name: string; home: string; uid: number; gid: number }>): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), 'dw-sshd-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')]);
  // Each account's authorized_keys is its own (sshd reads it as that user).
  for (const u of users) {
    const ssh = join(u.home, '.ssh');
    mkdirSync(ssh, { recursive: true, mode: 0o700 });
    cpSync(join(dir, 'client_key.pub'), join(ssh, 'authorized_keys'));
    if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, ssh]);
    chmodSync(join(ssh, 'authorized_keys'), 0o600);
  }
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      'StrictModes no',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const child: ChildProcess = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let said = '';
  child.stderr!.on('data', (d) => (said += d));
  // The client side: a config naming this server's key and known hosts, and `ssh` reading it.
  writeFileSync(
    join(dir, 'ssh_config'),
    [
      'Host *',
      `  IdentityFile ${join(dir, 'client_key')}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${join(dir, 'known_hosts')}`,
      '  StrictHostKeyChecking accept-new',
      '  LogLevel ERROR',
      '',
    ].join('\n'),
  );
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'ssh'), `#!/bin/sh\nexec /usr/bin/ssh -F ${join(dir, 'ssh_config')} "$@"\n`, { mode: 0o755 });
  // Ready when a connection is taken.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.on('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`sshd did not start: ${said}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    dir,
    path: `${join(dir, 'bin')}:${process.env.PATH}`,
    url: (user) => `ssh://${user}@127.0.0.1:${port}`,
    stop: async () => {
      child.kill();
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const me = () => userInfo().username;
