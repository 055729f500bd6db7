// The CLI as a user meets it without a daemon: help, version, usage errors, and a light import graph.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { cacheDir, defaultSocketPath, stateDir } from '../src/protocol/paths.js';
import { dirname, join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const DW = join(ROOT, 'dist', 'cli', 'dw.cjs');
const COMMANDS = ['run', 'validate', 'memory', 'clear', 'cache', 'status', 'stop', 'logs', 'dial-stdio', 'completion'];
const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;

function dw(...args: string[]) {
  const r = spawnSync(process.execPath, [DW, ...args], {
    encoding: 'utf8',
    env: { ...process.env, DW_AUTOSTART: '0', DW_SOCKET: '/tmp/dw-no-such-dir/dwd.sock' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('--version prints the package version', () => {
  assert.deepEqual(dw('--version'), { code: 0, stdout: `${version}\n`, stderr: '' });
});

test('every command has --help that shows its usage, exit 0', () => {
  for (const cmd of COMMANDS) {
    const r = dw(cmd, '--help');
    assert.equal(r.code, 0, cmd);
    assert.match(r.stdout, new RegExp(`^Usage: dw ${cmd}`), cmd);
  }
  const top = dw('--help');
  assert.equal(top.code, 0);
  for (const cmd of COMMANDS) assert.match(top.stdout, new RegExp(`^  ${cmd} +\\S`, 'm'));
  assert.equal(dw('help', 'run').stdout, dw('run', '--help').stdout);
  assert.equal(dw('ps', '--help').stdout, dw('memory', '--help').stdout, 'ps is an alias of memory');
});

test('usage errors exit 2 with a pointer to --help', () => {
  const cases = [
    dw('frobnicate'),
    dw('run'),
    dw('run', 'a.json', '--bogus'),
    dw('run', 'a.json', '--arg', 'novalue'),
    dw('run', 'a.json', '--timeout', 'soon'),
    dw('completion'),
    dw('completion', 'fish'),
  ];
  for (const r of cases) {
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^dw: error \[DW_ERR_USAGE\]: /);
  }
  assert.match(
    cases[0]!.stderr,
    /unknown command "frobnicate"; commands: run, validate, memory, clear, cache, status, stop, logs, dial-stdio, completion/,
  );
  assert.match(cases.at(-1)!.stderr, /takes a shell: bash or zsh, not "fish"/);
  assert.equal(dw().code, 2, 'no command: help, as a usage error');
});

test('XDG folders and DW_SOCKET count only as absolute paths (a relative one would differ per working directory)', () => {
  const home = homedir();
  assert.equal(defaultSocketPath({ XDG_RUNTIME_DIR: 'run' }), `/tmp/dw-${process.getuid!()}/dwd.sock`);
  assert.equal(defaultSocketPath({ XDG_RUNTIME_DIR: '/run/user/7' }), '/run/user/7/dw/dwd.sock');
  assert.equal(stateDir({ XDG_STATE_HOME: 'state' }), join(home, '.local', 'state', 'dw'));
  assert.equal(stateDir({ XDG_STATE_HOME: '/s' }), '/s/dw');
  assert.equal(cacheDir({ XDG_CACHE_HOME: './c' }), join(home, '.cache', 'dw', 'steps'));
  assert.equal(cacheDir({ XDG_CACHE_HOME: '/c' }), '/c/dw/steps');
  assert.equal(cacheDir({ XDG_CACHE_HOME: '/c', CACHE_DIRECTORY: '/var/cache/dwd' }), '/var/cache/dwd/steps');
  // DW_SOCKET likewise, but said: it is the user's own setting, not a folder dw picks.
  assert.throws(() => defaultSocketPath({ DW_SOCKET: 'run/dwd.sock' }), /DW_SOCKET run\/dwd\.sock is a relative path/);
  const r = spawnSync(process.execPath, [DW, 'status'], { encoding: 'utf8', env: { ...process.env, DW_SOCKET: 'dwd.sock' } });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^dw: error \[DW_ERR_USAGE\]: DW_SOCKET dwd\.sock is a relative path; give the socket's absolute path/);
});

test('dw stop without a daemon is not an error', () => {
  const r = dw('stop');
  assert.equal(r.code, 0);
  assert.match(r.stderr, /no dwd is running/);
});

test("the CLI's import graph holds nothing heavy", () => {
  // The sources, through tsc's one-file-per-module output; then the bundle that `dw` really runs.
  const heavy = /^(onnxruntime-node|sharp|pino|zod|chokidar|systeminformation)(\/|$)/;
  const seen = new Set<string>();
  const bare = new Set<string>();
  const walk = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(/(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
      const spec = m[1] ?? m[2]!;
      if (spec.startsWith('.')) walk(resolve(dirname(file), spec));
      else bare.add(spec);
    }
  };
  walk(join(ROOT, 'dist', 'cli', 'main.js'));
  assert.ok(seen.size > 5, 'the walk followed the relative imports');
  const offending = [...bare].filter((s) => heavy.test(s));
  assert.deepEqual(offending, []);
  assert.deepEqual(
    [...bare].filter((s) => !s.startsWith('node:')),
    [],
    'only node: built-ins outside the project',
  );
  for (const f of seen) assert.match(f, /dist\/(cli|protocol)\//, `${f} is outside cli/ and protocol/`);
  // The bundle is CommonJS (it starts faster than ESM): its imports are require() calls.
  const bundled = [...readFileSync(DW, 'utf8').matchAll(/(?:from|import|require)\s*\(?\s*["']([^"']+)["']/g)].map((m) => m[1]!);
  assert.ok(bundled.length > 0);
  assert.deepEqual(
    bundled.filter((s) => !s.startsWith('node:')),
    [],
    'the bundle imports only node: built-ins',
  );
});

test('dwd: --help lists every setting with its environment variable and default; bad flags exit 2', () => {
  const dwd = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'dist', 'daemon', 'main.js'), ...args], { encoding: 'utf8' });
  const help = dwd('--help');
  assert.equal(help.status, 0);
  for (const env of ['DW_SOCKET', 'DWD_KEEP_ALIVE', 'DWD_MAX_MEMORY', 'DWD_TIMEOUT', 'DWD_PARALLEL', 'DWD_ALLOWED_ROOTS', 'DWD_PLUGINS'])
    assert.match(help.stdout, new RegExp(env));
  assert.match(help.stdout, /--keep-alive V +DWD_KEEP_ALIVE +.*\(default: 1800s\)/);
  assert.equal(dwd('--version').stdout.trim(), version);
  for (const bad of [['--bogus'], ['--keep-alive', '600h'], ['--max-memory', 'abc%'], ['--parallel', '0'], ['--log-level', 'loud']]) {
    const r = dwd(...bad);
    assert.equal(r.status, 2, bad.join(' '));
    assert.match(r.stderr, /^dwd: /);
  }
});

/** What bash's completion offers for the words typed so far (the last one being completed), in the project folder. */
function bashCompletes(...typed: string[]): string[] {
  const script = dw('completion', 'bash');
  assert.equal(script.code, 0, script.stderr);
  const words = ['dw', ...typed].map((w) => `'${w}'`).join(' ');
  const r = spawnSync(
    'bash',
    [
      '--norc',
      '--noprofile',
      '-c',
      `${script.stdout}\nCOMP_WORDS=(${words}); COMP_CWORD=${typed.length}; _dw; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .sort();
}

test('dw completion bash completes commands, options, workflow files and directories the way bash calls it', () => {
  assert.deepEqual(bashCompletes('c'), ['cache', 'clear', 'completion']);
  assert.deepEqual(bashCompletes('cache', ''), ['clear']);
  assert.deepEqual(bashCompletes('run', '--o'), ['--output-dir']);
  assert.deepEqual(bashCompletes('ps', '--j'), ['--json'], 'an alias completes like its command');
  assert.deepEqual(bashCompletes('run', 'workflows/oc'), ['workflows/ocr.json']);
  assert.deepEqual(bashCompletes('run', 'workflows/samples/'), ['workflows/samples/speech.json'], 'only .json files for a workflow');
  assert.deepEqual(bashCompletes('run', 'x.json', '--output-dir', 'be'), ['bench']);
  assert.deepEqual(bashCompletes('run', 'x.json', '--timeout', ''), [], 'a number is not completed');
  assert.deepEqual(bashCompletes('completion', ''), ['bash', 'zsh']);
});

test('dw completion zsh describes every command and is valid zsh', () => {
  const r = dw('completion', 'zsh');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^#compdef dw\n/);
  for (const cmd of COMMANDS) assert.match(r.stdout, new RegExp(`^    '${cmd}:\\S`, 'm'), cmd);
  assert.match(
    r.stdout,
    /^    run\) opts=\(--arg -a --output-dir -o --json --timeout --keep-alive --quiet -q --no-cache --help\); files=workflow;/m,
  );
  // zsh is not on every machine; where it is, it must parse the script.
  const zsh = spawnSync('zsh', ['-n'], { input: r.stdout, encoding: 'utf8' });
  if (zsh.error === undefined) assert.equal(zsh.status, 0, zsh.stderr);
});

test('hints name dw and dwd the way that works from where the user is', () => {
  const run = (env: NodeJS.ProcessEnv) =>
    spawnSync(process.execPath, [DW, 'run', 'x.json'], {
      encoding: 'utf8',
      env: { ...process.env, DW_AUTOSTART: 'off', DW_SOCKET: '/tmp/dw-no-such-dir/dwd.sock', ...env },
    }).stderr;
  // Not on PATH (after npm ci): the daemon's own path.
  const bare = run({ PATH: '/usr/bin:/bin', npm_lifecycle_event: '', npm_command: '' });
  assert.match(bare, new RegExp(`Start one with \`${join(ROOT, 'dist', 'daemon', 'main.js').replaceAll('/', '\\/')} &\``));
  assert.match(bare, /or unset DW_AUTOSTART/, 'DW_AUTOSTART=off is honoured and named');
  // Through npx: npx's own words.
  assert.match(run({ npm_lifecycle_event: 'npx' }), /Start one with `npx dwd &`/);
});
