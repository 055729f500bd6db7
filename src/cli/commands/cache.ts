import { DwError, EXIT } from '../../protocol/errors.js';
import type { CacheResult } from '../../protocol/messages.js';
import { ask } from '../autostart.js';
import type { Command } from '../command.js';
import { bytes, entries } from '../format.js';

function render(c: CacheResult): string {
  if (c.max_bytes === 0) return 'step cache: off (dwd --cache-size 0): every step runs every time\n';
  const asked = c.hits + c.misses;
  const rate = asked === 0 ? 'no step asked for it yet' : `${((100 * c.hits) / asked).toFixed(0)}% hits (${c.hits} of ${asked} steps)`;
  return (
    [
      ...(c.cleared ? [`cleared ${entries(c.cleared.entries)} (${bytes(c.cleared.bytes)})`] : []),
      `step cache  ${c.dir}`,
      `size        ${bytes(c.bytes)} in ${entries(c.entries)}, of ${bytes(c.max_bytes)} (dwd --cache-size; least recently used out first)`,
      `since start ${rate}`,
    ].join('\n') + '\n'
  );
}

export const cache: Command = {
  name: 'cache',
  summary: "show the daemon's step cache (size, entries, hit rate); dw cache clear empties it",
  help: `Usage: dw cache [clear] [--json]

dwd keeps the result of each step it runs, keyed by what decides it: the step's type and
version, its models (by content and session options) and its arguments, input files by
their content. A later run with the same key gets the result without running the step or
loading its models. This shows where the cache is, its size against dwd --cache-size,
its entries, and how many steps found their result there since the daemon started.

  dw cache clear   remove every entry (runs then compute again and store anew)

Steps that are not deterministic (a stable-diffusion step without a seed, a plugin) are not
cached unless the step says "cache": true; "cache": false turns it off for a step;
dw run --no-cache runs every step and stores its result anew.

Options:
      --json   print the result as JSON
  -h, --help   show this help`,
  positionals: 1,
  completes: ['clear'],
  options: { json: { type: 'boolean' } },
  async run(values, positionals) {
    const [what] = positionals;
    if (what !== undefined && what !== 'clear') {
      throw new DwError('DW_ERR_USAGE', `dw cache takes "clear" or nothing, got "${what}"; see dw cache --help`);
    }
    const r = await ask('cache', what === 'clear' ? { clear: true } : {}, { start: false });
    process.stdout.write(values.json ? `${JSON.stringify(r)}\n` : render(r));
    return EXIT.OK;
  },
};
