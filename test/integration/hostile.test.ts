// Hostile input: paths outside --allowed-roots, another user at the socket, and a flood of broken
// frames from several connections while a real client keeps running workflows.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { dwJson, OCR_WORKFLOW, ROOT, sandbox, startDaemon, type Daemon, type Sandbox } from '../helpers/env.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';

const SAMPLE = join(ROOT, 'workflows', 'samples', 'receipt.png');
let sb: Sandbox;
let d: Daemon;
let allowed: string;

before(async () => {
  sb = sandbox();
  allowed = join(sb.dir, 'allowed');
  mkdirSync(allowed);
  d = await startDaemon(sb, ['--allowed-roots', allowed]);
});
after(async () => {
  await d.stop();
  sb.cleanup();
});

test('--allowed-roots: inside works; outside, ".." tricks and symlinks out are refused with DW_ERR_PATH_FORBIDDEN', async () => {
  const wf = JSON.parse(readFileSync(OCR_WORKFLOW, 'utf8'));
  delete wf.$schema;
  wf.variables.image = 'scan.png';
  writeFileSync(join(allowed, 'ocr.json'), JSON.stringify(wf));
  copyFileSync(SAMPLE, join(allowed, 'scan.png'));
  const ok = await dwJson(sb, ['run', join(allowed, 'ocr.json')]);
  assert.equal(ok.ran.code, 0, ok.ran.stderr);

  const outside = join(sb.dir, 'outside.png');
  copyFileSync(SAMPLE, outside);
  symlinkSync(outside, join(allowed, 'link.png'));
  // Dangling: refused the same, so a link made inside a root does not tell whether a path outside exists.
  symlinkSync(join(sb.dir, 'no-such.png'), join(allowed, 'dangling.png'));
  const refused: Array<[string[], RegExp]> = [
    [
      ['run', join(allowed, 'ocr.json'), '--arg', `image=${join(allowed, 'dangling.png')}`],
      /dangling\.png \(really .*no-such\.png\) is outside/,
    ],
    [['run', join(allowed, 'ocr.json'), '--arg', `image=${outside}`], /input "image" .*outside\.png is outside the daemon's allowed roots/],
    [['run', join(allowed, 'ocr.json'), '--arg', `image=${allowed}/../outside.png`], /outside the daemon's allowed roots/],
    [['run', join(allowed, 'ocr.json'), '--arg', `image=${join(allowed, 'link.png')}`], /link\.png \(really .*outside\.png\) is outside/],
    [['run', OCR_WORKFLOW], /workflow .*ocr\.json is outside the daemon's allowed roots/],
  ];
  const secret = join(sb.dir, 'secret.txt');
  writeFileSync(secret, 'TOP-SECRET');
  refused.push(
    [['validate', secret], /secret\.txt is outside the daemon's allowed roots/],
    [['validate', join(sb.dir, 'nope.json')], /nope\.json is outside the daemon's allowed roots/],
    [['clear', secret], /secret\.txt is outside the daemon's allowed roots/],
  );
  for (const [args, why] of refused) {
    const r = await dwJson(sb, args);
    assert.equal(r.ran.code, 3, args.join(' '));
    assert.equal(r.json.error.code, 'DW_ERR_PATH_FORBIDDEN');
    assert.match(r.json.error.message, why);
    assert.doesNotMatch(r.ran.stdout + r.ran.stderr, /TOP-SECRET/, 'a refused file is never read');
  }
});

test('--allowed-roots: a path made by a step is refused, and plugins are off', async () => {
  const secret = join(sb.dir, 'secret.png');
  copyFileSync(SAMPLE, secret);
  // The path is built at run time, so no load-time check sees it; the runner refuses it.
  writeFileSync(
    join(allowed, 'smuggle.json'),
    JSON.stringify({
      id: 'smuggle',
      steps: [
        { name: 't', task: { type: 'text_template', arguments: { template: secret } } },
        { name: 'leak', task: { type: 'image_save', arguments: { image: 'previous_result:t.text' } } },
      ],
    }),
  );
  const r = await dwJson(sb, ['run', join(allowed, 'smuggle.json'), '--output-dir', join(sb.dir, 'out')]);
  assert.equal(r.ran.code, 3, r.ran.stderr);
  assert.equal(r.json.error.code, 'DW_ERR_BAD_ARGUMENT');
  assert.match(r.json.error.message, /step "leak": "image" got a file path from a step result/);
  writeFileSync(join(allowed, 'p.mjs'), 'export default { async run() { return "ran"; } };\n');
  writeFileSync(
    join(allowed, 'plug.json'),
    JSON.stringify({ id: 'plug', steps: [{ name: 'x', pipeline: { type: './p.mjs', models: {} } }] }),
  );
  const p = await dwJson(sb, ['run', join(allowed, 'plug.json')]);
  assert.equal(p.ran.code, 3);
  assert.equal(p.json.error.code, 'DW_ERR_PLUGIN');
  assert.match(p.json.error.message, /are off in this daemon/);
});

const runuser = spawnSync('runuser', ['--help']);
test('another user cannot connect to a per-user daemon', {
  skip: process.getuid?.() !== 0 || runuser.error ? 'needs root and runuser' : false,
}, () => {
  // Open the sandbox to everyone, so that only what dwd itself set up (its socket directory and
  // the socket's mode) stands between "nobody" and the daemon.
  chmodSync(sb.dir, 0o755);
  const probe = `require('net').createConnection(${JSON.stringify(sb.socket)}).on('connect',()=>{console.log('CONNECTED');process.exit(0)}).on('error',e=>{console.log(e.code);process.exit(0)})`;
  const r = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, '-e', probe], { encoding: 'utf8' });
  assert.equal(r.stdout.trim(), 'EACCES', r.stderr);
});

/** A small deterministic PRNG, so a failure can be replayed. */
function rng(seed: number): () => number {
  return () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
const hello = () => JSON.stringify({ id: 0, type: 'hello', protocol: PROTOCOL_VERSION, version });

/** Frames of every kind of wrong: garbage, truncated, wrongly typed, out of order, oversized. */
function badFrame(r: () => number): string {
  const kinds = [
    () =>
      Buffer.from(Array.from({ length: 1 + Math.floor(r() * 40) }, () => Math.floor(r() * 256)))
        .toString('latin1')
        .replace(/\n/g, '') + '\n',
    () => hello().slice(0, Math.floor(r() * 20)) + '\n',
    () => JSON.stringify({ id: Math.floor(r() * 100), type: 'run', workflow: r() > 0.5 ? 42 : null, args: 'x', cwd: 1 }) + '\n',
    () => JSON.stringify({ id: 'c', type: 'cancel', target: 'nothing-running' }) + '\n',
    () => JSON.stringify({ id: r(), type: ['status', 'stop-not', 'memory'][Math.floor(r() * 3)] }) + '\n',
    () => JSON.stringify([1, 2, 3]) + '\n',
    () => JSON.stringify({ id: 5, type: 'run', workflow: '/etc/passwd', args: {}, cwd: '/' }) + '\n',
    () => JSON.stringify({ id: 6, type: 'validate', workflow: join(allowed, '..', '..', 'x.json') }) + '\n',
    () => '{"id":1,"type":"hello","pad":"' + 'x'.repeat(100_000) + '"}\n',
  ];
  return kinds[Math.floor(r() * kinds.length)]!();
}

/** One hostile peer: sends `count` bad frames, reconnecting whenever the daemon closes on it. */
async function flood(seed: number, count: number): Promise<{ sent: number; errors: number; closes: number }> {
  const r = rng(seed);
  let sent = 0;
  let errors = 0;
  let closes = 0;
  while (sent < count) {
    await new Promise<void>((resolve) => {
      const s = createConnection(sb.socket);
      let buf = '';
      s.on('data', (chunk) => {
        buf += chunk;
        errors += (buf.match(/"type":"error"/g) ?? []).length;
        buf = buf.slice(buf.lastIndexOf('\n') + 1);
      });
      s.on('error', () => {});
      s.on('close', () => {
        closes += 1;
        resolve();
      });
      s.on('connect', () => {
        // Half the peers say hello first; the others also try a stop, which needs a hello.
        if (r() < 0.5) s.write(hello() + '\n');
        else s.write(JSON.stringify({ id: 'stop', type: 'stop' }) + '\n');
        const burst = 1 + Math.floor(r() * 50);
        for (let i = 0; i < burst && sent < count; i++, sent++) s.write(badFrame(r));
        setTimeout(() => s.end(), 20);
      });
    });
  }
  return { sent, errors, closes };
}

test('thousands of broken frames from several connections while a real client runs workflows: every run succeeds, models stay loaded', async () => {
  const wf = join(allowed, 'ocr.json');
  const warm = await dwJson(sb, ['run', wf]);
  assert.equal(warm.ran.code, 0);
  const floods = Promise.all([1, 2, 3, 4].map((seed) => flood(seed, 1000)));
  const runs = [];
  for (let i = 0; i < 4; i++) runs.push(await dwJson(sb, ['run', wf]));
  const results = await floods;
  for (const r of runs) {
    assert.equal(r.ran.code, 0, r.ran.stderr);
    assert.deepEqual(
      r.json.models.map((m: any) => m.cache),
      ['hit', 'hit', 'hit'],
    );
  }
  assert.equal(
    results.reduce((s, x) => s + x.sent, 0),
    4000,
  );
  assert.ok(
    results.every((x) => x.errors > 0),
    'every peer was answered with errors',
  );
  const st = await dwJson(sb, ['status']);
  assert.equal(st.json.pid, d.proc.pid, 'the daemon is the same process');
  assert.equal(st.json.runners[0].restarts, 0);
});
