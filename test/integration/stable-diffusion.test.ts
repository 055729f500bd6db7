// Issue 12 end to end: workflows/txt2img.json and stable-diffusion steps on a real dwd, driven by
// the real dw, with exports generated in test code (test/helpers/sd-export.ts): the PNG's pixels
// against the hand-computed image, the same bytes for the same seed, one model per graph in
// `dw memory`, external data in the cache key and under the watcher, hashing progress of a big
// file, progress per step, Ctrl-C between steps without killing the runner, early size errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import sharp from 'sharp';
import { dw, dwJson, eventually, fileDaemon, ROOT, spawnDw } from '../helpers/env.js';
import { STRIP, STRIP_PROMPT, stripExpected, writeExport, type ExportOptions } from '../helpers/sd-export.js';

const TXT2IMG = join(ROOT, 'workflows', 'txt2img.json');
const { sb } = fileDaemon();

let made = 0;
function exportDir(o: ExportOptions): ReturnType<typeof writeExport> {
  return writeExport(join(sb.dir, `export${made++}`), o);
}

async function pixels(file: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 3);
  return { data, width: info.width, height: info.height };
}

/** A one-step workflow in the sandbox with these arguments for a stable-diffusion step on `dir`. */
function workflow(name: string, dir: string, args: Record<string, unknown>): string {
  const file = join(sb.dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      id: name,
      variables: {},
      steps: [
        {
          name: 'image',
          pipeline: { type: 'stable-diffusion', models: { export: dir }, arguments: args },
          result: { content_type: 'image/png', save: true },
        },
      ],
    }),
  );
  return file;
}

const strip = exportDir(STRIP);

test('txt2img.json on a generated export: the PNG is the hand-computed image, the same bytes again, every graph a cache hit', async () => {
  const out = join(sb.dir, 'out1');
  const args = ['run', TXT2IMG, '--arg', `export=${strip.dir}`, '--arg', `prompt=${STRIP_PROMPT}`, '--arg', 'steps=2', '--output-dir', out];
  const cold = await dwJson(sb, args);
  assert.equal(cold.ran.code, 0, cold.ran.stderr);
  const png = join(out, 'txt2img-image.png');
  const img = await pixels(png);
  assert.deepEqual([img.width, img.height], [640, 8]);
  // guidance_scale 0 in the workflow: the prompt alone
  assert.deepEqual(Buffer.from(img.data).equals(Buffer.from(stripExpected(null))), true, 'pixels as computed by hand');
  assert.deepEqual(cold.json.results.image.image, { kind: 'image', width: 640, height: 8, channels: 3 });
  assert.equal(cold.json.results.image.seed, 42);
  assert.deepEqual(
    cold.json.models.map((m: any) => [m.role, m.cache, m.provider, m.path]),
    [
      ['text_encoder', 'loaded', 'cpu', join(strip.dir, 'text_encoder', 'model.onnx')],
      ['unet', 'loaded', 'cpu', join(strip.dir, 'unet', 'model.onnx')],
      ['vae_decoder', 'loaded', 'cpu', join(strip.dir, 'vae_decoder', 'model.onnx')],
    ],
  );
  const bytes = readFileSync(png);
  const warm = await dwJson(sb, args);
  assert.equal(warm.ran.code, 0, warm.ran.stderr);
  assert.deepEqual(
    warm.json.models.map((m: any) => m.cache),
    ['hit', 'hit', 'hit'],
  );
  assert.ok(readFileSync(png).equals(bytes), 'the same PNG bytes');
});

test('dw memory lists text_encoder, unet and vae_decoder of the export as separate models; dw clear EXPORT releases them', async () => {
  const mem = JSON.parse((await dw(sb, ['memory', '--json'])).stdout);
  const mine = mem.runners[0].models.filter((m: any) => m.path.startsWith(strip.dir));
  assert.deepEqual(mine.map((m: any) => m.role).sort(), ['text_encoder', 'unet', 'vae_decoder']);
  assert.equal(new Set(mine.map((m: any) => m.key)).size, 3);
  const cleared = await dw(sb, ['clear', strip.dir, '--json']);
  assert.equal(cleared.code, 0, cleared.stderr);
  assert.equal(JSON.parse(cleared.stdout).released.length, 3);
});

test('same seed, same bytes; another seed, another image (an epsilon UNet, noise all the way through)', async () => {
  const lin = exportDir({ ks: 0.5, scheduler: { _class_name: 'EulerAncestralDiscreteScheduler' } });
  const run = async (seed: number, out: string) => {
    const r = await dwJson(sb, [
      'run',
      TXT2IMG,
      '--arg',
      `export=${lin.dir}`,
      '--arg',
      `seed=${seed}`,
      '--arg',
      'steps=3',
      '--output-dir',
      join(sb.dir, out),
    ]);
    assert.equal(r.ran.code, 0, r.ran.stderr);
    return readFileSync(join(sb.dir, out, 'txt2img-image.png'));
  };
  const a = await run(7, 's1');
  const b = await run(7, 's2');
  const c = await run(8, 's3');
  assert.ok(a.equals(b), 'same seed: the same PNG bytes');
  assert.ok(!a.equals(c), 'another seed: another image');
  assert.deepEqual((await pixels(join(sb.dir, 's1', 'txt2img-image.png'))).width, 512, 'no fixed size in the UNet: 512');
});

test("the UNet's key covers its external data: rewriting model.onnx_data drops the unet (watcher) and the next run reloads only it", async () => {
  const ex = exportDir(STRIP);
  const args = [
    'run',
    TXT2IMG,
    '--arg',
    `export=${ex.dir}`,
    '--arg',
    `prompt=${STRIP_PROMPT}`,
    '--arg',
    'steps=1',
    '--output-dir',
    join(sb.dir, 'ext'),
  ];
  const first = await dwJson(sb, args);
  assert.equal(first.ran.code, 0, first.ran.stderr);
  const unetKey = first.json.models.find((m: any) => m.role === 'unet').key;
  ex.setScale([0.5, 2, 1, 1]);
  await eventually('the watcher drops the unet', async () => {
    const mem = JSON.parse((await dw(sb, ['memory', '--json'])).stdout);
    return !mem.runners[0].models.some((m: any) => m.key === unetKey);
  });
  const again = await dwJson(sb, args);
  assert.equal(again.ran.code, 0, again.ran.stderr);
  assert.deepEqual(
    again.json.models.map((m: any) => [m.role, m.cache]),
    [
      ['text_encoder', 'hit'],
      ['unet', 'loaded'],
      ['vae_decoder', 'hit'],
    ],
  );
  assert.notEqual(again.json.models[1].key, unetKey);
  const img = await pixels(join(sb.dir, 'ext', 'txt2img-image.png'));
  assert.ok(Buffer.from(img.data).equals(Buffer.from(stripExpected(null, [0.5, 2, 1, 1]))), 'the new weights are in the image');
});

test('a big external-data file is hashed once, with progress on the first load; progress per step with the time per step', async () => {
  const big = exportDir({ ...STRIP, dataPadding: 70 * 1024 * 1024 });
  const args = ['run', TXT2IMG, '--arg', `export=${big.dir}`, '--arg', 'steps=4', '--output-dir', join(sb.dir, 'big')];
  const first = await dw(sb, args);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /image: hashing unet data model\.onnx_data \(70 MB\), once per file version/);
  assert.match(first.stderr, /image: 70\/70 MB of unet data model\.onnx_data hashed/);
  assert.match(first.stderr, /image: 4\/4 steps, \d+ ms\/step/);
  const second = await dw(sb, args);
  assert.equal(second.code, 0, second.stderr);
  assert.doesNotMatch(second.stderr, /hashing/);
});

test('Ctrl-C during a long generation stops it between steps: the runner is not killed and the models stay loaded', async () => {
  const lin = exportDir({ ks: 0.5 });
  const file = workflow('long', lin.dir, { prompt: 'a fox', steps: 1000, width: 1024, height: 1024, seed: 1 });
  const before = JSON.parse((await dw(sb, ['status', '--json'])).stdout);
  const run = spawnDw(sb, ['run', file, '--output-dir', join(sb.dir, 'cancelled')]);
  await run.stderrMatches(/image: \d+\/1000 steps/);
  run.proc.kill('SIGINT');
  const r = await run.done;
  assert.equal(r.code, 130, r.stderr);
  assert.equal(existsSync(join(sb.dir, 'cancelled')), false, 'nothing written');
  const after = JSON.parse((await dw(sb, ['status', '--json'])).stdout);
  assert.equal(after.runners[0].pid, before.runners[0].pid, 'cancelled between steps; nothing had to be killed');
  const next = await dwJson(sb, ['run', workflow('short', lin.dir, { prompt: 'a fox', steps: 2, width: 16, height: 16 })]);
  assert.deepEqual(
    next.json.models.map((m: any) => m.cache),
    ['hit', 'hit', 'hit'],
  );
});

test('bad input fails early with a clear code, and the daemon carries on', async () => {
  const wrongSize = await dwJson(sb, ['run', workflow('wrong-size', strip.dir, { prompt: 'x', width: 512, height: 512 })]);
  assert.equal(wrongSize.ran.code, 3);
  assert.equal(wrongSize.json.error.code, 'DW_ERR_BAD_ARGUMENT');
  assert.match(wrongSize.json.error.message, /"width" is 512, but this UNet takes only 640 .*allowed size: 640x8/);
  const missing = await dwJson(sb, ['run', TXT2IMG, '--arg', `export=${join(sb.dir, 'no-such-export')}`]);
  assert.equal(missing.ran.code, 3);
  assert.equal(missing.json.error.code, 'DW_ERR_MODEL_NOT_FOUND');
  assert.match(missing.json.error.message, /is not a folder; make one with `optimum-cli export onnx --model stabilityai\/sd-turbo/);
  const valid = await dwJson(sb, ['validate', TXT2IMG, '--arg', `export=${strip.dir}`]);
  assert.equal(valid.ran.code, 0, valid.ran.stderr);
  assert.deepEqual(
    valid.json.models.filter((m: any) => !m.role.includes('/')).map((m: any) => m.role),
    ['text_encoder', 'unet', 'vae_decoder'],
  );
  const ok = await dwJson(sb, ['run', TXT2IMG, '--arg', `export=${strip.dir}`, '--arg', 'steps=1', '--output-dir', join(sb.dir, 'after')]);
  assert.equal(ok.ran.code, 0, ok.ran.stderr);
});

/** A CUDA provider library beside onnxruntime's binding and a GPU that nvidia-smi sees. */
function gpuMissing(): string | false {
  const bin = join(ROOT, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'x64');
  if (!existsSync(join(bin, 'libonnxruntime_providers_cuda.so')))
    return 'no CUDA provider installed (ONNXRUNTIME_NODE_INSTALL=cuda12, see the README)';
  try {
    execFileSync('nvidia-smi', ['-L'], { stdio: 'ignore' });
  } catch {
    return 'no GPU: nvidia-smi found none';
  }
  return false;
}

test('on a GPU the same workflow runs with the CUDA provider and gives the same image', { skip: gpuMissing() }, async () => {
  const file = join(sb.dir, 'cuda.json');
  const wf = JSON.parse(readFileSync(TXT2IMG, 'utf8'));
  wf.steps[0].pipeline.providers = ['cuda'];
  writeFileSync(file, JSON.stringify(wf));
  const r = await dwJson(sb, [
    'run',
    file,
    '--arg',
    `export=${strip.dir}`,
    '--arg',
    `prompt=${STRIP_PROMPT}`,
    '--arg',
    'steps=2',
    '--output-dir',
    join(sb.dir, 'cuda'),
  ]);
  assert.equal(r.ran.code, 0, r.ran.stderr);
  assert.deepEqual(
    r.json.models.map((m: any) => m.provider),
    ['cuda', 'cuda', 'cuda'],
  );
  const img = await pixels(join(sb.dir, 'cuda', 'cuda-image.png'));
  assert.ok(Buffer.from(img.data).equals(Buffer.from(stripExpected(null))));
});
