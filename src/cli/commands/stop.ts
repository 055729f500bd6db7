import { EXIT } from '../../protocol/errors.js';
import { defaultSocketPath } from '../../protocol/paths.js';
import { stopDaemon } from '../autostart.js';
import type { Command } from '../command.js';

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
    try {
      await stopDaemon(socket);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ECONNREFUSED') {
        process.stderr.write(`dw: no dwd is running on ${socket}\n`);
        return EXIT.OK;
      }
      throw err;
    }
    process.stderr.write('dw: dwd stopped\n');
    return EXIT.OK;
  },
};
