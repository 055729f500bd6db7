import { EXIT } from '../../protocol/errors.js';
import type { RunnerStatus } from '../../protocol/messages.js';
import { ask } from '../autostart.js';
import type { Command } from '../command.js';
import { bytes, entries, span } from '../format.js';
import { hostSetting } from '../host.js';

/** A runner's state in words; "ready" only when it is, and backing off only while it waits to restart. */
export function runnerLine(r: Omit<RunnerStatus, 'runs_active' | 'runs_queued' | 'models' | 'cpu_priority'>): string {
  const history = r.restarts ? `, restarted ${r.restarts}x (last: ${r.last_exit})` : '';
  if (r.next_start_in_ms !== null) {
    const streak = r.crash_streak > 1 ? `it crashed ${r.crash_streak} times in a row, backing off; ` : '';
    return `down (${streak}next start in ${(r.next_start_in_ms / 1000).toFixed(1)} s)${history}`;
  }
  if (r.frozen && r.pid) return `stopped by a signal, pid ${r.pid}: runs wait until it is resumed (\`kill -CONT ${r.pid}\`)${history}`;
  const streak = r.crash_streak > 1 ? `; it crashed ${r.crash_streak} times in a row within 30 s of starting` : '';
  return `${r.state}${r.pid ? `, pid ${r.pid}` : ''}${history}${streak}`;
}

export const status: Command = {
  name: 'status',
  summary: 'show whether dwd runs, its version, runners and runs (never starts it)',
  help: `Usage: dw status [--json]

Shows the daemon's pid, version, socket, uptime, each runner's state (device, restarts,
last exit, runs and models on it, a lowered CPU priority), runs so far and models loaded.
Does not start a daemon: exit code 4 when none answers.

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
    const lines = [
      `dwd ${s.version} (protocol ${s.protocol}), pid ${s.pid}, up ${span(s.uptime_s * 1000)}`,
      `socket   ${s.socket}`,
      ...(hostSetting()?.kind === 'ssh' ? [`host     ${s.host}, through ${process.env.DW_HOST}`] : []),
      ...s.runners.map((r) => {
        const work = [
          ...(r.runs_active > 0 ? [`${r.runs_active} running`] : []),
          ...(r.runs_queued > 0 ? [`${r.runs_queued} waiting for it`] : []),
          `${r.models} model${r.models === 1 ? '' : 's'}`,
          ...(r.cpu_priority === 'lowered' ? ['lower CPU priority while a younger run is busy elsewhere'] : []),
        ];
        return `runner ${r.index} on ${r.device}: ${runnerLine(r)}; ${work.join(', ')}`;
      }),
      `runs     ${s.runs_total} so far, ${s.runs_active} running, ${s.runs_queued} queued`,
      `models   ${s.models_loaded} loaded`,
      `cache    ${s.cache.max_bytes === 0 ? 'off' : `${bytes(s.cache.bytes)} of step results in ${entries(s.cache.entries)} (of ${bytes(s.cache.max_bytes)})`}`,
      ...(s.log
        ? [
            `log      ${s.log.file ?? (s.log.journal ? "systemd's journal" : 'its standard output, no file')}${
              s.log.dropped ? `; ${s.log.dropped} lines could not be written (${s.log.last_error})` : ''
            }`,
          ]
        : []),
    ];
    process.stdout.write(lines.join('\n') + '\n');
    return EXIT.OK;
  },
};
