import { DwError, EXIT } from '../../protocol/errors.js';
import { defaultSocketPath, lockPathFor } from '../../protocol/paths.js';
import { readPidFile, recordAlive } from '../../protocol/pids.js';
import { stopDaemon, waitForExit } from '../autostart.js';
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
