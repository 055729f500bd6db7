// The step result cache, with a real daemon and the real models: what is a hit (and touches no
// model), what must be a miss (one byte of an input, a model file, an argument, a sub-workflow),
// what is never cached, two runs missing on one key at once, a damaged entry, the bound, and
// `dw cache`. The cache is off in other tests' sandboxes; here it is on.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeWav } from '../../src/media/audio.js';
import { dw, dwJson, MODELS, OCR_WORKFLOW, pluginWorkflow, ROOT, SAMPLE, spawnDw, withDaemon, type Sandbox } from '../helpers/env.js';

/** The steps' cache states of a run, by name. */
const states = (json: { steps: Array<{ name: string; cache: string }> }) => Object.fromEntries(json.steps.map((s) => [s.name, s.cache]));

async function runJson(sb: Sandbox, args: string[]) {
  const r = await dwJson(sb, ['run', ...args]);
  assert.equal(r.ran.code, 0, r.ran.stderr);
  return r;
}

/** A daemon with the step cache on (the sandbox's env turns it off for the other tests). */
function withCache<T>(args: string[], fn: (sb: Sandbox) => Promise<T>, runners = 1): Promise<T> {
  return withDaemon(args.includes('--cache-size') ? args : [...args, '--cache-size', '1G'], fn, runners);
}

test('a second run is served from the cache without loading a model; its progress and --json say so', async () => {
  await withCache([], async (sb) => {
    const first = await runJson(sb, [OCR_WORKFLOW]);
    assert.deepEqual(states(first.json), { read: 'miss' });
    // Unloaded: a hit must not load the models again.
    assert.equal((await dw(sb, ['clear'])).code, 0);
    const again = await dw(sb, ['run', OCR_WORKFLOW, '--json']);
    assert.equal(again.code, 0, again.stderr);
    const json = JSON.parse(again.stdout);
    assert.deepEqual(states(json), { read: 'hit' });
    assert.equal(json.results.read.text, first.json.results.read.text);
    assert.deepEqual(json.models, [], 'no model touched');
    assert.match(again.stderr, /read: cached \(saved \d+ ms\)/);
    assert.ok(json.steps[0].saved_ms > 0);
    const mem = JSON.parse((await dw(sb, ['memory', '--json'])).stdout);
    assert.equal(mem.runners.flatMap((r: { models: unknown[] }) => r.models).length, 0, 'still nothing loaded');
    assert.equal(mem.cache.entries, 1);
    // --no-cache runs it (loading the models) and stores it anew.
    const fresh = await runJson(sb, [OCR_WORKFLOW, '--no-cache']);
    assert.deepEqual(states(fresh.json), { read: 'miss' });
    assert.equal(fresh.json.models.length, 3);
  });
});

test('one byte of an input, a model file, an argument or a sub-workflow changed is a miss; the rest of the run hits', async () => {
  await withCache([], async (sb) => {
    // An input file: one byte of a WAV's samples.
    const wav = join(sb.dir, 'tone.wav');
    const samples = new Float32Array(16000).map((_, i) => Math.sin(i / 10) / 2);
    writeFileSync(wav, encodeWav({ kind: 'audio', samples, sample_rate: 16000, channels: 1 }));
    const load = join(sb.dir, 'load.json');
    writeFileSync(
      load,
      JSON.stringify({
        id: 'load',
        variables: { audio: 'tone.wav' },
        steps: [
          { name: 'load', task: { type: 'audio_load', arguments: { audio: 'variable:audio' } } },
          { name: 'rate', task: { type: 'json_pick', arguments: { value: 'previous_result:load', path: 'sample_rate' } } },
        ],
      }),
    );
    assert.deepEqual(states((await runJson(sb, [load])).json), { load: 'miss', rate: 'miss' });
    assert.deepEqual(states((await runJson(sb, [load])).json), { load: 'hit', rate: 'hit' });
    const bytes = readFileSync(wav);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(wav, bytes);
    assert.deepEqual(
      states((await runJson(sb, [load])).json),
      { load: 'miss', rate: 'miss' },
      'the audio differs, and so does what picks from it',
    );

    // A model file: the OCR models copied, then one byte of the keys file changed.
    const models = join(sb.dir, 'models');
    mkdirSync(models);
    cpSync(MODELS, models, { recursive: true });
    const ocr = JSON.parse(readFileSync(OCR_WORKFLOW, 'utf8'));
    for (const role of Object.keys(ocr.steps[0].pipeline.models))
      ocr.steps[0].pipeline.models[role] = join(models, ocr.steps[0].pipeline.models[role].split('/').pop());
    ocr.variables.image = SAMPLE;
    const mine = join(sb.dir, 'ocr.json');
    writeFileSync(mine, JSON.stringify(ocr));
    assert.deepEqual(states((await runJson(sb, [mine])).json), { read: 'miss' });
    assert.deepEqual(states((await runJson(sb, [mine])).json), { read: 'hit' });
    const keys = join(models, 'ppocr_keys_v1.txt');
    writeFileSync(keys, `${readFileSync(keys, 'utf8')}\n`);
    assert.deepEqual(states((await runJson(sb, [mine])).json), { read: 'miss' });

    // An argument.
    assert.deepEqual(states((await runJson(sb, [mine, '--arg', 'min_score=0.6'])).json), { read: 'miss' });
    assert.deepEqual(states((await runJson(sb, [mine, '--arg', 'min_score=0.6'])).json), { read: 'hit' });

    // A sub-workflow: receipt-total.json runs ocr.json; a changed default there changes its step.
    const sub = join(sb.dir, 'sub');
    mkdirSync(sub);
    for (const f of ['receipt-total.json', 'ocr.json']) cpSync(join(ROOT, 'workflows', f), join(sub, f));
    const subOcr = JSON.parse(readFileSync(join(sub, 'ocr.json'), 'utf8'));
    subOcr.variables.image = SAMPLE;
    writeFileSync(join(sub, 'ocr.json'), JSON.stringify(subOcr));
    const total = join(sub, 'receipt-total.json');
    const args = [total, '--arg', `image=${SAMPLE}`, '-o', sb.dir];
    assert.deepEqual(states((await runJson(sb, args)).json), { crop: 'miss', 'ocr/read': 'miss', ocr: 'off', total: 'miss' });
    assert.deepEqual(states((await runJson(sb, args)).json), { crop: 'hit', 'ocr/read': 'hit', ocr: 'off', total: 'hit' });
    subOcr.variables.min_score = 0.7;
    writeFileSync(join(sub, 'ocr.json'), JSON.stringify(subOcr));
    const changed = await runJson(sb, args);
    assert.equal(states(changed.json)['ocr/read'], 'miss');
    assert.equal(states(changed.json).crop, 'hit', 'the crop before it is unchanged');
    assert.match(readFileSync(join(sb.dir, 'receipt-total-total.txt'), 'utf8'), /TOTAL 15\.90/, 'a saved output comes from a hit too');
  });
});

test('"cache": false, and a plugin (not known to be deterministic), run every time; "cache": true caches a plugin', async () => {
  await withCache([], async (sb) => {
    const counter = join(sb.dir, 'count.txt');
    writeFileSync(counter, '');
    const body = `(await import('node:fs')).appendFileSync(${JSON.stringify(counter)}, 'x'); return 'ran';`;
    const plain = pluginWorkflow(sb.dir, 'plain', body);
    const cached = pluginWorkflow(sb.dir, 'cached', body);
    const spec = JSON.parse(readFileSync(cached, 'utf8'));
    spec.steps[0].cache = true;
    writeFileSync(cached, JSON.stringify(spec));
    const never = join(sb.dir, 'never.json');
    writeFileSync(
      never,
      JSON.stringify({ id: 'never', steps: [{ name: 't', cache: false, task: { type: 'text_template', arguments: { template: 'hi' } } }] }),
    );
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(states((await runJson(sb, [plain])).json), { x: 'off' });
      assert.deepEqual(states((await runJson(sb, [never])).json), { t: 'off' });
    }
    assert.deepEqual(states((await runJson(sb, [cached])).json), { x: 'miss' });
    assert.deepEqual(states((await runJson(sb, [cached])).json), { x: 'hit' });
    assert.equal(readFileSync(counter, 'utf8'), 'xxx', 'the plain plugin ran twice, the cached one once');
  });
});

test('two runs that miss on the same key at once compute it once; the second waits and hits', async () => {
  await withCache(
    [],
    async (sb) => {
      const counter = join(sb.dir, 'count.txt');
      writeFileSync(counter, '');
      const wf = pluginWorkflow(
        sb.dir,
        'slowonce',
        `(await import('node:fs')).appendFileSync(${JSON.stringify(counter)}, 'x'); await new Promise((r) => setTimeout(r, 1500)); return 'done';`,
      );
      const spec = JSON.parse(readFileSync(wf, 'utf8'));
      spec.steps[0].cache = true;
      writeFileSync(wf, JSON.stringify(spec));
      const a = spawnDw(sb, ['run', wf, '--json']);
      await a.stderrMatches(/x: started/);
      const b = spawnDw(sb, ['run', wf, '--json']);
      const [ra, rb] = await Promise.all([a.done, b.done]);
      assert.equal(ra.code, 0, ra.stderr);
      assert.equal(rb.code, 0, rb.stderr);
      assert.deepEqual([states(JSON.parse(ra.stdout)).x, states(JSON.parse(rb.stdout)).x].sort(), ['hit', 'miss']);
      assert.equal(readFileSync(counter, 'utf8'), 'x', 'computed once');
    },
    2,
  );
});

test('a damaged entry is a miss, never a wrong result; the store stays within --cache-size; dw cache and dw cache clear', async () => {
  await withCache(['--cache-size', '400K'], async (sb) => {
    const first = await runJson(sb, [OCR_WORKFLOW]);
    const store = join(sb.env.XDG_CACHE_HOME!, 'dw', 'steps');
    const entry = readdirSync(store)
      .flatMap((d) => readdirSync(join(store, d)).map((f) => join(store, d, f)))
      .find((f) => /[0-9a-f]{64}$/.test(f))!;
    writeFileSync(entry, readFileSync(entry).subarray(0, 100));
    const again = await runJson(sb, [OCR_WORKFLOW]);
    assert.deepEqual(states(again.json), { read: 'miss' });
    assert.equal(again.json.results.read.text, first.json.results.read.text);

    // The receipt resized to about 300 pixels wide: an entry of some 175 KB each, six of them,
    // more than twice the bound: the oldest go, and what is left fits.
    const resize = join(sb.dir, 'resize.json');
    writeFileSync(
      resize,
      JSON.stringify({
        id: 'resize',
        variables: { w: 300 },
        steps: [{ name: 'r', task: { type: 'image_resize', arguments: { image: SAMPLE, width: 'variable:w' } } }],
      }),
    );
    for (let i = 0; i < 6; i++) assert.deepEqual(states((await runJson(sb, [resize, '--arg', `w=${300 + i}`])).json), { r: 'miss' });
    const c = JSON.parse((await dw(sb, ['cache', '--json'])).stdout);
    assert.ok(c.bytes <= 400 * 1024, `${c.bytes} bytes kept`);
    assert.ok(c.entries < 6, `${c.entries} entries kept: the oldest went`);
    const onDisk = readdirSync(store).flatMap((d) =>
      readdirSync(join(store, d))
        .filter((f) => /^[0-9a-f]{64}$/.test(f))
        .map((f) => statSync(join(store, d, f)).size),
    );
    assert.equal(
      onDisk.reduce((a, b) => a + b, 0),
      c.bytes,
    );
    assert.equal(c.entries, onDisk.length);
    // The latest is still there: a hit.
    assert.deepEqual(states((await runJson(sb, [resize, '--arg', 'w=305'])).json), { r: 'hit' });
    assert.ok(c.hits + c.misses >= 8);
    const shown = await dw(sb, ['cache']);
    assert.match(shown.stdout, /size\s+[\d.]+ KB in \d+ entr(y|ies), of 400\.0 KB/);
    assert.match(shown.stdout, /since start \d+% hits/);
    const cleared = await dw(sb, ['cache', 'clear']);
    assert.match(cleared.stdout, /cleared \d+ entr(y|ies)/);
    assert.equal(JSON.parse((await dw(sb, ['cache', '--json'])).stdout).entries, 0);
    assert.deepEqual(states((await runJson(sb, [OCR_WORKFLOW])).json), { read: 'miss' });
  });
});

test('dwd --cache-size 0 keeps no step cache: every step runs, and dw cache says so', async () => {
  await withCache(['--cache-size', '0'], async (sb) => {
    assert.deepEqual(states((await runJson(sb, [OCR_WORKFLOW])).json), { read: 'off' });
    assert.deepEqual(states((await runJson(sb, [OCR_WORKFLOW])).json), { read: 'off' });
    assert.match((await dw(sb, ['cache'])).stdout, /off \(dwd --cache-size 0\)/);
  });
});

test('an input rewritten in place with its size and mtime put back is a miss, never the old result', async () => {
  await withCache([], async (sb) => {
    const wav = join(sb.dir, 'in.wav');
    const tone = (f: number) =>
      encodeWav({ kind: 'audio', samples: new Float32Array(8000).map((_, i) => Math.sin(i / f) / 2), sample_rate: 16000, channels: 1 });
    const wf = join(sb.dir, 'peak.json');
    writeFileSync(
      wf,
      JSON.stringify({
        id: 'peak',
        variables: { audio: 'in.wav' },
        steps: [{ name: 'load', task: { type: 'audio_load', arguments: { audio: 'variable:audio' } } }],
      }),
    );
    writeFileSync(wav, tone(10));
    const then = new Date('2024-01-01T00:00:00Z');
    utimesSync(wav, then, then);
    assert.deepEqual(states((await runJson(sb, [wf])).json), { load: 'miss' });
    writeFileSync(wav, tone(3)); // same length, other samples
    utimesSync(wav, then, then);
    assert.deepEqual(states((await runJson(sb, [wf])).json), { load: 'miss' }, 'the bytes changed, though size and mtime did not');
  });
});

test('a lock whose holder is gone (an unrelated live pid, no heartbeat) is taken over, and a waiting run says what it waits for', async () => {
  await withCache([], async (sb) => {
    await runJson(sb, [OCR_WORKFLOW]);
    const store = join(sb.env.XDG_CACHE_HOME!, 'dw', 'steps');
    const entry = readdirSync(store)
      .flatMap((d) => readdirSync(join(store, d)).map((f) => join(store, d, f)))
      .find((f) => /[0-9a-f]{64}$/.test(f))!;
    rmSync(entry);
    // A live process that is no runner, and a lock nobody has touched for a minute.
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      writeFileSync(`${entry}.lock`, String(sleeper.pid));
      const old = new Date(Date.now() - 60_000);
      utimesSync(`${entry}.lock`, old, old);
      const r = await runJson(sb, [OCR_WORKFLOW, '--timeout', '60']);
      assert.deepEqual(states(r.json), { read: 'miss' });
      // A fresh lock of a live holder that never beats: waited for (and said), then taken over.
      rmSync(entry);
      writeFileSync(`${entry}.lock`, String(sleeper.pid));
      // Its own deadline well past the takeover: it succeeds, it does not wait until then.
      const waited = await dw(sb, ['run', OCR_WORKFLOW, '--json', '--timeout', '40']);
      assert.equal(waited.code, 0, waited.stderr);
      assert.match(waited.stderr, /waiting for another run that computes the same result \(runner pid \d+\)/);
    } finally {
      sleeper.kill();
    }
  });
});

test('the store misused: a named pipe in place of an entry is a miss, files a killed writer left are swept, a store that cannot even be locked is a miss said', async () => {
  await withCache([], async (sb) => {
    const wf = join(sb.dir, 'tpl.json');
    writeFileSync(
      wf,
      JSON.stringify({ id: 'tpl', steps: [{ name: 't', task: { type: 'text_template', arguments: { template: 'hi' } } }] }),
    );
    assert.deepEqual(states((await runJson(sb, [wf])).json), { t: 'miss' });
    const store = join(sb.env.XDG_CACHE_HOME!, 'dw', 'steps');
    const top = readdirSync(store)[0]!;
    const key = readdirSync(join(store, top)).find((f) => /^[0-9a-f]{64}$/.test(f))!;
    const entry = join(store, top, key);
    // A named pipe where the entry was: read non-blocking, it is a miss (not a run waiting for a writer), and replaced.
    rmSync(entry);
    execFileSync('mkfifo', [entry]);
    assert.deepEqual(states((await runJson(sb, [wf])).json), { t: 'miss' });
    assert.ok(statSync(entry).isFile());
    assert.deepEqual(states((await runJson(sb, [wf])).json), { t: 'hit' });
    // Written aside by writers killed before their rename (the pid in the name is gone), and one by a live writer.
    const dead = [`${entry}.999999999.1.tmp`, `${entry}.lock.999999999.2`];
    const live = `${entry}.${process.pid}.1.tmp`;
    const old = new Date(Date.now() - 60_000);
    for (const f of [...dead, live]) {
      writeFileSync(f, 'x'.repeat(1000));
      utimesSync(f, old, old);
    }
    // A fresh one of a gone pid may be a writer's in another pid namespace: left alone until it is old.
    const fresh = `${entry}.999999999.3.tmp`;
    writeFileSync(fresh, 'x');
    const counted = JSON.parse((await dw(sb, ['cache', '--json'])).stdout);
    assert.equal(counted.entries, 1);
    for (const f of dead) assert.equal(existsSync(f), false, `${f} swept`);
    assert.ok(existsSync(live), "a live writer's file is left to it");
    assert.ok(existsSync(fresh), 'a fresh one is left');
    rmSync(live);
    rmSync(fresh);
    // A link in the store to a folder elsewhere: nothing there is counted, swept or cleared.
    const outside = join(sb.dir, 'outside');
    mkdirSync(outside);
    const theirs = [join(outside, key), join(outside, `${key}.999999999.1.tmp`)];
    for (const f of theirs) writeFileSync(f, 'x');
    const link = join(store, top === 'ff' ? 'fe' : 'ff');
    symlinkSync(outside, link);
    assert.equal(JSON.parse((await dw(sb, ['cache', '--json'])).stdout).entries, 1);
    assert.equal((await dw(sb, ['cache', 'clear'])).code, 0);
    for (const f of theirs) assert.ok(existsSync(f), `${f} left alone`);
    rmSync(link);
    assert.deepEqual(states((await runJson(sb, [wf])).json), { t: 'miss' });
    // No room even for a lock (here: a file where the entry's folder goes): the step runs, is a miss, and says why.
    rmSync(join(store, top), { recursive: true });
    writeFileSync(join(store, top), '');
    const before = JSON.parse((await dw(sb, ['cache', '--json'])).stdout).misses;
    const r = await dw(sb, ['run', wf, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(states(JSON.parse(r.stdout)), { t: 'miss' });
    assert.match(r.stderr, /step "t": its result could not be kept in the step cache \((EEXIST|ENOTDIR)\)/);
    assert.equal(JSON.parse((await dw(sb, ['cache', '--json'])).stdout).misses, before + 1);
  });
});
