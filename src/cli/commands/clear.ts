import { basename } from 'node:path';
import { EXIT } from '../../protocol/errors.js';
import { ask } from '../autostart.js';
import type { Command } from '../command.js';
import { bytes } from '../format.js';
import { currentDir } from '../workflow-path.js';

/** File names, each once, with how many sessions came from it when more than one (other options, or runners). */
function named(names: string[]): string {
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
  return [...counts].map(([n, c]) => (c > 1 ? `${n} ×${c}` : n)).join(', ');
}

export const clear: Command = {
  name: 'clear',
  summary: 'unload models: all of them (fresh runners), or those of one model or workflow file',
  help: `Usage: dw clear [MODEL_FILE | WORKFLOW_FILE] [--no-wait] [--json]

Without a path: unloads everything by replacing every runner with a fresh process, the
only way to give all of their memory back to the OS, and prints the memory freed (the
runners' RSS before and after). With a model file: releases the sessions built from it,
in whichever runner holds them. With a workflow file: releases the sessions of every model
it names.

A run using a model being cleared is waited for (dw says so on stderr); with --no-wait
dw clear fails instead (exit 6, DW_ERR_MODEL_IN_USE). Does not start a daemon.

Options:
      --no-wait   fail instead of waiting for a run that uses the models
      --json      print the result as JSON
  -h, --help      show this help`,
  positionals: 1,
  completes: 'any',
  options: { 'no-wait': { type: 'boolean' }, json: { type: 'boolean' } },
  async run(values, positionals) {
    const r = await ask(
      'clear',
      { ...(positionals[0] ? { path: positionals[0], cwd: currentDir() } : {}), no_wait: values['no-wait'] === true },
      // The daemon says when it waits for runs using the models: a quiet dw clear would look stuck.
      { start: false, onEvent: (e) => e.kind === 'log' && process.stderr.write(`dw: ${e.message}\n`) },
    );
    if (values.json) {
      process.stdout.write(JSON.stringify(r) + '\n');
      return EXIT.OK;
    }
    const what =
      r.released.length === 0
        ? positionals[0]
          ? `no loaded model comes from ${positionals[0]}`
          : 'nothing was loaded'
        : `released ${r.released.length} session${r.released.length === 1 ? '' : 's'} (${named(r.released.map((x) => basename(x.path)))})`;
    const mem =
      r.freed_bytes === null ? '' : `; runners' rss ${bytes(r.rss_before)} -> ${bytes(r.rss_after)}, freed ${bytes(r.freed_bytes)}`;
    process.stdout.write(`${r.scope === 'all' ? 'runners replaced: ' : ''}${what}${mem}\n`);
    return EXIT.OK;
  },
};
