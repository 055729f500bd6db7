import { EXIT } from '../../protocol/errors.js';
import { ask } from '../autostart.js';
import type { Command } from '../command.js';
import { span } from '../format.js';


export const status: Command = {
  name: 'status',
  summary: 'show whether dwd runs, its version, runner and runs (never starts it)',
  help: `Usage: dw status [--json]

Shows the daemon's pid, version, socket, uptime, runner state (restarts, last exit),
runs so far and models loaded. Does not start a daemon: exit code 4 when none answers.

Options:
      --json   print the status as JSON
  -h, --help   show this help`,
  positionals: 0,
  options: { json: { type: 'boolean' } },
  async run(values) {
    const s = await ask('status', {}, { start: false });
    if (values.json) {
      process.stdout.write(JSON.stringify(s) + '\n');
      return EXIT.OK;
    }
    const r = s.runner;
    const lines = [
      `dwd ${s.version} (protocol ${s.protocol}), pid ${s.pid}, up ${span(s.uptime_s * 1000)}`,
      `socket   ${s.socket}`,
      `runner   ${r.state}${r.pid ? `, pid ${r.pid}` : ''}${r.restarts ? `, restarted ${r.restarts}x (last: ${r.last_exit})` : ''}` +
        (r.crash_streak > 1 ? `; crashing repeatedly (${r.crash_streak} in a row), backing off` : '') +
        (r.next_start_in_ms !== null ? `; next start in ${(r.next_start_in_ms / 1000).toFixed(1)} s` : ''),
      `runs     ${s.runs_total} so far, ${s.runs_active} running, ${s.runs_queued} queued`,
      `models   ${s.models_loaded} loaded`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
    return EXIT.OK;
  },
};
