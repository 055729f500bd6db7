import { basename } from 'node:path';
import { EXIT } from '../../protocol/errors.js';
import type { MemoryResult, ModelInfo } from '../../protocol/messages.js';
import { ask } from '../autostart.js';
import type { Command } from '../command.js';
import { bytes, entries, span, table } from '../format.js';

/** A session's options, as far as they differ from the defaults. */
export function describeOptions(o: ModelInfo['options']): string {
  if (!o) return '-';
  const parts = [
    ...(o.providers.join(',') !== 'cpu' ? [o.providers.join(',')] : []),
    ...(o.intra_op_threads ? [`${o.intra_op_threads} threads`] : []),
    ...(o.graph_optimization && o.graph_optimization !== 'all' ? [`optimization ${o.graph_optimization}`] : []),
    ...(o.intra_op_spinning ? ['spinning'] : []),
    ...(o.graph_rewrites === false ? ['no rewrites'] : []),
  ];
  return parts.length > 0 ? parts.join(', ') : 'defaults';
}

function render(m: MemoryResult, now: number): string {
  const out: string[] = [];
  out.push(
    `dwd ${m.daemon.version}  pid ${m.daemon.pid}  rss ${bytes(m.daemon.rss)}  up ${span(m.daemon.uptime_s * 1000)}  runs ${m.runs_total}`,
  );
  out.push(`host  ${m.host.cpus} cpus (${m.host.cpu}), ${bytes(m.host.available_mem)} available of ${bytes(m.host.total_mem)}`);
  const holds =
    m.budget.runner_bytes === null
      ? ''
      : `; the ${m.runners.length > 1 ? 'runners hold' : 'runner holds'} ${bytes(m.budget.runner_bytes)} more than fresh ones`;
  out.push(
    `budget  ${m.budget.max_bytes === null ? 'none (dwd --max-memory)' : bytes(m.budget.max_bytes)}, models use ${bytes(m.budget.used_bytes)}${holds}`,
  );
  out.push(
    `cache  ${m.cache.max_bytes === 0 ? 'off (dwd --cache-size 0)' : `step results on disk: ${bytes(m.cache.bytes)} in ${entries(m.cache.entries)}, of ${bytes(m.cache.max_bytes)} (dw cache)`}`,
  );
  if (m.gpus.length === 0) out.push(`gpu  ${m.gpu_note ?? 'no GPU'}`);
  for (const g of m.gpus) {
    const mine = g.processes.map((p) => `pid ${p.pid}: ${bytes(p.used_memory)}`).join(', ');
    out.push(
      `gpu  ${g.name}: ${bytes(g.memory_used)} used, ${bytes(g.memory_free)} free of ${bytes(g.memory_total)}${mine ? ` (${mine})` : ''}`,
    );
  }
  for (const r of m.runners) {
    out.push('');
    const busy = `${r.runs_active > 0 ? `  ${r.runs_active} running` : ''}${r.runs_queued > 0 ? `  ${r.runs_queued} waiting` : ''}`;
    const state = r.frozen ? 'stopped by a signal' : r.state;
    out.push(`runner ${r.index}  pid ${r.pid ?? '-'}  ${state}  device ${r.device}  rss ${bytes(r.rss)}${busy}`);
    if (r.growth?.warning) out.push(`  WARNING: ${r.growth.warning}`);
    if (r.models.length === 0) {
      out.push('  no models loaded');
      continue;
    }
    // Two sessions of one file (other options) would look alike: then a column says which is which.
    const paths = r.models.map((x) => x.path);
    const withOptions = new Set(paths).size < paths.length;
    const rows = r.models.map((x) => [
      basename(x.path),
      x.key.slice(0, 8),
      ...(withOptions ? [describeOptions(x.options)] : []),
      x.provider,
      bytes(x.size_bytes),
      bytes(x.cost_bytes),
      String(x.uses),
      `${span(now - x.last_used)} ago`,
      x.in_use ? 'in use' : x.keep_alive_ms === -1 ? 'pinned' : x.expires_at ? `in ${span(x.expires_at - now)}` : '-',
    ]);
    out.push(
      table(
        ['MODEL', 'KEY', ...(withOptions ? ['OPTIONS'] : []), 'PROVIDER', 'SIZE', 'MEMORY', 'USES', 'LAST USED', 'UNLOADS'],
        rows,
      ).replace(/^/gm, '  '),
    );
  }
  if (m.evictions.length > 0) {
    out.push('');
    out.push('recent evictions:');
    for (const e of m.evictions.slice(0, 5))
      out.push(`  ${span(now - e.at)} ago  ${basename(e.path)} (${bytes(e.cost_bytes)}): ${e.reason}`);
  }
  return out.join('\n');
}

export const memory: Command = {
  name: 'memory',
  aliases: ['ps'],
  summary: 'show loaded models, what each costs in memory, and when it unloads',
  help: `Usage: dw memory [--json]      (alias: dw ps)

Shows the daemon's and each runner's memory (RSS), GPU memory where nvidia-smi answers, the
memory budget, and one row per loaded model: file, short key, provider, size on disk,
memory it cost (runner RSS growth measured across its load), uses, last use and when its
keep-alive unloads it. Also recent evictions and a warning if the runner keeps growing.
Does not start a daemon.

Options:
      --json   one JSON object: daemon, host, budget, runners[] with models[], gpus[], runs_total
  -h, --help   show this help`,
  positionals: 0,
  options: { json: { type: 'boolean' } },
  async run(values) {
    const m = await ask('memory', {}, { start: false });
    process.stdout.write((values.json ? JSON.stringify(m) : render(m, Date.now())) + '\n');
    return EXIT.OK;
  },
};
