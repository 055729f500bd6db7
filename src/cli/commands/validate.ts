import { currentDir, workflowPath } from '../workflow-path.js';
import { DwError, EXIT } from '../../protocol/errors.js';
import { ask } from '../autostart.js';
import type { Command } from '../command.js';

export const validate: Command = {
  name: 'validate',
  summary: 'check a workflow file without running it',
  help: `Usage: dw validate FILE [--arg NAME=VALUE]... [--json]

Checks FILE against the workflow schema (every problem, with its JSON path), that its
variables, references, model files and input files exist, and that --arg names are
declared. Loads no model. Exit code 0 when valid, 3 when not.

Options:
  -a, --arg NAME=VALUE   check with these variable values too
      --json             print the result as JSON
  -h, --help             show this help`,
  positionals: 1,
  completes: 'workflow',
  options: { arg: { type: 'string', short: 'a', multiple: true }, json: { type: 'boolean' } },
  async run(values, positionals) {
    if (positionals.length !== 1) throw new DwError('DW_ERR_USAGE', `dw validate takes one workflow file, got ${positionals.length}`);
    const args: Record<string, string> = {};
    for (const pair of (values.arg as string[] | undefined) ?? []) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new DwError('DW_ERR_USAGE', `--arg "${pair}" is not of the form NAME=VALUE`);
      args[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    const r = await ask('validate', { workflow: workflowPath(positionals[0]!), args, cwd: currentDir() }, { start: true, files: true });
    if (values.json) process.stdout.write(JSON.stringify(r) + '\n');
    else {
      const steps = r.steps.map((s) => `${s.name} [${s.type}]`).join(', ');
      process.stdout.write(
        `${positionals[0]}: valid workflow "${r.workflow.id}": ${r.steps.length} step${r.steps.length === 1 ? '' : 's'} (${steps}), ${r.models.length} model file${r.models.length === 1 ? '' : 's'}\n`,
      );
    }
    return EXIT.OK;
  },
};
