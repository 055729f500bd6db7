// A daemon through ssh (DW_HOST=ssh://): through the socket an earlier dw's ssh connection forwards
// when it still leads to one, else a new `ssh host -- dw dial-stdio`, which starts a daemon there
// as any dw would; then the forward is set up for the next dw.
import { existsSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { DwError } from '../protocol/errors.js';
import type { Connected } from './autostart.js';
import { Client } from './client.js';
import type { Host } from './host.js';
import { forwardPath, forwardSocket, sshPipe } from './ssh.js';
import { connectTimeoutMs } from './settings.js';

/** How long a daemon reached through ssh may take to answer its hello: ssh's setup, and a dwd autostarted there. */
const SSH_HELLO_MS = 30_000;

/** A hello that a daemon answered, whatever it said: a version mismatch is for the user, not a reason to try another way. */
async function greet(client: Client, host: Extract<Host, { kind: 'ssh' }>, deadlineMs: number, anyVersion: boolean): Promise<void> {
  try {
    await client.handshake(deadlineMs);
  } catch (err) {
    const e = err as DwError;
    // A daemon takes `stop` after any hello: dw stop must end one of another version too.
    if (anyVersion && e.code === 'DW_ERR_VERSION_MISMATCH') {
      client.hello = e.details?.daemon as Client['hello'];
      return;
    }
    client.close();
    if (e.code === 'DW_ERR_VERSION_MISMATCH')
      throw new DwError(e.code, `${e.message}.\nRestart it so both match: \`DW_HOST=${host.url} dw stop\`, then run again.`, e.details);
    throw e;
  }
}

/**
 * The far daemon's socket, forwarded by an earlier dw through its ssh connection, when it still
 * leads to a daemon; null when its ssh connection has ended (the forward is removed) or no daemon
 * answers there (dial-stdio starts one).
 */
async function throughForward(
  host: Extract<Host, { kind: 'ssh' }>,
  path: string,
  timeoutMs: number,
  anyVersion: boolean,
): Promise<Client | null> {
  const socket = await new Promise<Socket | null>((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => resolve(s));
    s.once('error', () => resolve(null));
  });
  // Nobody listens: the ssh connection that forwarded it has ended (or something else is there).
  if (!socket) {
    try {
      rmSync(path, { force: true });
      rmSync(`${path}.to`, { force: true });
    } catch {}
    return null;
  }
  const client = Client.over(socket, host.url, timeoutMs, () => '');
  try {
    await greet(client, host, timeoutMs, anyVersion);
    return client;
  } catch (err) {
    // The forward stays: it leads to the daemon again once dial-stdio has started one there.
    if ((err as DwError).code === 'DW_ERR_VERSION_MISMATCH') throw err;
    return null;
  }
}

export async function connectSsh(host: Extract<Host, { kind: 'ssh' }>, start: boolean, anyVersion = false): Promise<Connected> {
  const timeoutMs = connectTimeoutMs();
  const forward = forwardPath(host);
  const near = forward && existsSync(forward) ? await throughForward(host, forward, timeoutMs, anyVersion) : null;
  if (near) return { client: near, socket: host.url, byContent: true };
  const { stream, why } = sshPipe(host, timeoutMs, start);
  const client = Client.over(stream, host.url, timeoutMs, why);
  await greet(client, host, timeoutMs + SSH_HELLO_MS, anyVersion);
  // For the next dw: the daemon's socket, through the ssh connection this one leaves up.
  if (forward && client.hello?.socket) forwardSocket(host, forward, client.hello.socket);
  return { client, socket: host.url, byContent: true };
}
