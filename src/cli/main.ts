#!/usr/bin/env node
// dw: the thin CLI. Imports only node:* and src/protocol, so a warm `dw run` costs little more
// than a Node start; everything heavy lives in dwd.
import { parseArgs } from 'node:util';
import { DwError, ERROR_CODES, EXIT, exitCodeFor, toErrorPayload } from '../protocol/errors.js';
import { PACKAGE_VERSION } from '../protocol/version.js';
import { joinNegativeValues } from '../protocol/argv.js';
import { COMMON, type Command } from './command.js';
import { ENV_DOCS } from './settings.js';
import { hostSetting } from './host.js';
import { dialStdio } from './commands/dial-stdio.js';
import { cache } from './commands/cache.js';
import { jsonError, run } from './commands/run.js';
import { status } from './commands/status.js';
import { stop } from './commands/stop.js';
import { validate } from './commands/validate.js';
import { memory } from './commands/memory.js';
import { clear } from './commands/clear.js';
import { logs } from './commands/logs.js';
import { completion } from './commands/completion.js';

const COMMANDS: Command[] = [run, validate, memory, clear, cache, status, stop, logs, dialStdio, completion(() => COMMANDS)];
const BY_NAME = new Map(COMMANDS.flatMap((c) => [c.name, ...(c.aliases ?? [])].map((n) => [n, c] as const)));

export function exitCodeTable(): string {
  const byExit = new Map<number, string[]>();
  for (const [code, { exit }] of Object.entries(ERROR_CODES)) byExit.set(exit, [...(byExit.get(exit) ?? []), code]);
  return [[0, ['success']] as const, ...[...byExit.entries()].sort((a, b) => a[0] - b[0])]
    .map(([exit, codes]) => `  ${String(exit).padStart(3)}  ${codes.join(', ')}`)
    .join('\n');
}

function environmentHelp(): string {
  const width = Math.max(...ENV_DOCS.map(([name]) => name.length));
  return ENV_DOCS.map(([name, doc]) => `  ${name.padEnd(width)}  ${doc.replaceAll('\n', `\n  ${' '.repeat(width)}  `)}`).join('\n');
}

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `dw ${PACKAGE_VERSION}: run ML workflows on a daemon that keeps their models loaded

Usage: dw [--host URL] COMMAND [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

  dw COMMAND --help shows a command's options. dw --version prints the version.
  --host URL (before the command) picks the daemon, as DW_HOST does, and wins over it.

Environment:
${environmentHelp()}

Exit codes:
${exitCodeTable()}
  ${String(EXIT_PIPE).padStart(3)}  the reader of dw's output closed the pipe (dw … | head)
`;
}

/**
 * `dw --host URL COMMAND …`: a global option before the command, winning over DW_HOST; it goes
 * into DW_HOST, so every part of dw (and a dw it starts) reads one setting. A unix:// host is a
 * socket path like DW_SOCKET's.
 */
function takeHost(argv: string[]): string[] {
  let rest = argv;
  const first = rest[0] ?? '';
  if (first === '--host' || first.startsWith('--host=')) {
    const value = first === '--host' ? rest[1] : first.slice('--host='.length);
    if (value === undefined || value === '' || (first === '--host' && value.startsWith('-')))
      throw new DwError('DW_ERR_USAGE', '--host needs a URL: ssh://[user@]host[:port] or unix:///path/to/dwd.sock');
    process.env.DW_HOST = value;
    rest = rest.slice(first === '--host' ? 2 : 1);
  }
  const host = hostSetting();
  if (host?.kind === 'unix') process.env.DW_SOCKET = host.path;
  return rest;
}

async function main(all: string[]): Promise<number> {
  const argv = takeHost(all);
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' && rest[0] ? BY_NAME.get(rest[0]) : undefined;
    process.stdout.write((topic ? topic.help : mainHelp()) + '\n');
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${PACKAGE_VERSION}\n`);
    return EXIT.OK;
  }
  const command = BY_NAME.get(name);
  if (!command)
    throw new DwError('DW_ERR_USAGE', `unknown command "${name}"; commands: ${COMMANDS.map((c) => c.name).join(', ')} (dw --help)`);
  let parsed;
  try {
    parsed = parseArgs({
      args: joinNegativeValues(rest, (name) => command.options[name]?.type === 'string'),
      options: { ...COMMON, ...command.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new DwError('DW_ERR_USAGE', `${(err as Error).message}; see dw ${command.name} --help`);
  }
  if (parsed.values.help) {
    process.stdout.write(command.help + '\n');
    return EXIT.OK;
  }
  if (parsed.positionals.length > command.positionals) {
    throw new DwError(
      'DW_ERR_USAGE',
      `dw ${command.name} takes ${command.positionals === 0 ? 'no arguments' : `at most ${command.positionals} argument${command.positionals === 1 ? '' : 's'}`}, got ${parsed.positionals.map((p) => `"${p}"`).join(' ')}; see dw ${command.name} --help`,
    );
  }
  return command.run(parsed.values, parsed.positionals);
}

/** 128 + SIGPIPE: what a shell reports for a Unix tool whose reader closed the pipe early. */
const EXIT_PIPE = 141;

// A reader that stops early (`dw logs | head -1`) closes the pipe: end quietly, as SIGPIPE ends
// other tools. Any other write failure (a full disk) is said once, on stderr, with its code.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(EXIT_PIPE);
  process.stderr.write(`dw: error [DW_ERR_OUTPUT]: cannot write to standard output: ${err.code ?? err.message}\n`);
  process.exit(exitCodeFor('DW_ERR_OUTPUT'));
});
// The same for progress on stderr (`dw run … 2>&1 | head -1`); nothing can be said there any more.
process.stderr.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? EXIT_PIPE : exitCodeFor('DW_ERR_OUTPUT')));

const argv = process.argv.slice(2);
main(argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const e = toErrorPayload(err);
    if (argv.includes('--json')) process.stdout.write(jsonError(err));
    process.stderr.write(`dw: error [${e.code}]: ${e.message}\n`);
    process.exitCode = err instanceof DwError ? exitCodeFor(err.code) : EXIT.RUN_FAILED;
    // What is said is said: a connection or watcher the failed command left open must not keep dw
    // from exiting (a bug of ours once hung it for good here).
    setTimeout(() => process.exit(), 1000).unref();
  },
);
