// Which daemon dw talks to: DW_HOST (or `dw --host URL`, which main.ts puts there) names a local
// socket (unix:///path) or a daemon on another machine or account (ssh://[user@]host[:port]),
// reached as Docker reaches DOCKER_HOST=ssh:// (ssh.ts). Only the parsing lives here: every dw
// reads it, and what ssh needs (child processes, streams) is loaded only when a host is ssh://.
import { DwError } from '../protocol/errors.js';

export type Host = { kind: 'unix'; path: string } | { kind: 'ssh'; url: string; target: string; port: number | null };

const usage = (raw: string, why: string) =>
  new DwError(
    'DW_ERR_USAGE',
    `DW_HOST (or --host) "${raw}": ${why}; write ssh://[user@]host[:port] for a daemon reached through ssh, or unix:///path/to/dwd.sock for a local socket`,
  );

/** DW_HOST parsed; null when unset (the local socket of DW_SOCKET or the defaults). */
export function hostSetting(env: NodeJS.ProcessEnv = process.env): Host | null {
  const raw = (env.DW_HOST ?? '').trim();
  if (raw === '') return null;
  if (raw.startsWith('unix://')) {
    const path = raw.slice('unix://'.length);
    if (!path.startsWith('/')) throw usage(raw, 'a unix:// socket path must be absolute (three slashes: unix:///run/dwd/dwd.sock)');
    return { kind: 'unix', path };
  }
  if (!raw.startsWith('ssh://')) throw usage(raw, 'unknown scheme');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usage(raw, 'not a URL');
  }
  if (!url.hostname) throw usage(raw, 'no host');
  if (url.password) throw usage(raw, 'a password does not belong in it (ssh uses your keys and agent)');
  if ((url.pathname && url.pathname !== '/') || url.search || url.hash) throw usage(raw, 'ssh:// takes no path');
  // A host or user starting with "-" would reach ssh as an option.
  const user = decodeURIComponent(url.username);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (/^-/.test(user) || /^-/.test(host)) throw usage(raw, 'a user or host may not start with "-"');
  return { kind: 'ssh', url: raw, target: user ? `${user}@${host}` : host, port: url.port ? Number(url.port) : null };
}

/** The command that runs dw on the far side: DW_REMOTE_DW, for a PATH without it (ssh's is short). */
export function remoteDw(env: NodeJS.ProcessEnv = process.env): string {
  return (env.DW_REMOTE_DW ?? '').trim() || 'dw';
}
