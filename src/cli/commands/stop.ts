import { DwError, EXIT } from '../../protocol/errors.js';
import { defaultSocketPath, lockPathFor } from '../../protocol/paths.js';
import { readPidFile, recordAlive } from '../../protocol/pids.js';
import { connect, stopDaemon, waitForExit } from '../autostart.js';
import { hostSetting } from '../host.js';
import type { Command } from '../command.js';

/** How long dw stop waits for a daemon that was already stopping (its grace period is not known here). */
const STOPPING_WAIT_MS = 60_000;

export const stop: Command = {
  name: 'stop',
  summary: 'stop the daemon (runs in flight finish first) and wait until it has exited',
  help: `Usage: dw stop

Asks dwd to shut down: it stops taking runs, lets the ones in flight finish (within its
grace period), stops its runner, removes its socket and exits. Returns once it has exited.
Succeeds (exit 0) when no daemon is running.

Options:
  -h, --help   show this help`,
  positionals: 0,
  options: {},
  async run() {
    if (hostSetting()?.kind === 'ssh') return stopThroughSsh();
    const socket = defaultSocketPath();
    let pid: number | undefined;
    try {
      pid = await stopDaemon(socket);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw err;
      // A daemon that no longer accepts connections may be stopping already: wait for it, as for one we stop.
      const holder = readPidFile(lockPathFor(socket));
      if (!holder || !recordAlive(holder)) {
        process.stderr.write(`dw: no dwd is running on ${socket}\n`);
        return EXIT.OK;
      }
      process.stderr.write(`dw: dwd (pid ${holder.pid}) is already stopping; waiting for it\n`);
      if (!(await waitForExit(holder.pid, STOPPING_WAIT_MS))) {
        throw new DwError(
          'DW_ERR_DAEMON_UNREACHABLE',
          `dwd (pid ${holder.pid}) does not accept connections and has not exited within ${STOPPING_WAIT_MS / 1000} s; end it with \`kill ${holder.pid}\``,
          { pid: holder.pid },
        );
      }
      pid = holder.pid;
    }
    process.stderr.write(`dw: dwd${pid ? ` (pid ${pid})` : ''} stopped\n`);
    return EXIT.OK;
  },
};

/** Past the grace period, how long a daemon reached through ssh may take to close the connection. */
const STOP_SLACK_MS = 10_000;

/** Through ssh, the daemon's pid is on another host: its closing the connection says it stopped. */
async function stopThroughSsh(): Promise<number> {
  let connected: Awaited<ReturnType<typeof connect>>;
  try {
    connected = await connect({ start: false, anyVersion: true });
  } catch (err) {
    if (!(err instanceof DwError) || !/no dwd answers/.test(err.message)) throw err;
    process.stderr.write(`dw: no dwd is running on ${process.env.DW_HOST}\n`);
    return EXIT.OK;
  }
  const { client, socket } = connected;
  try {
    const answer = await client.request('stop', {});
    const gone = await Promise.race([
      client.closed().then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), answer.grace_ms + STOP_SLACK_MS).unref()),
    ]);
    const who = `dwd (pid ${answer.pid}${client.hello?.host ? ` on ${client.hello.host}` : ''})`;
    if (!gone)
      throw new DwError('DW_ERR_DAEMON_UNREACHABLE', `${who} took the stop request but has not finished stopping after its grace period`, {
        pid: answer.pid,
      });
    process.stderr.write(`dw: ${who} stopped (${socket})\n`);
    return EXIT.OK;
  } finally {
    client.close();
  }
}
