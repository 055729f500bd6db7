// examples/ocr-folder: its Makefile as a user runs it, `make -j4` over a folder of images against
// one daemon that it autostarts, and again after touching one image.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DW, dw, ROOT, sandbox } from '../helpers/env.js';

const SAMPLES = join(ROOT, 'workflows', 'samples');
const makeMissing = spawnSync('make', ['--version']).error ? 'no make on this machine' : false;

test('make -j4 turns a folder of images into texts through one autostarted daemon; a touched image is run again, from the step cache', {
  skip: makeMissing,
}, async () => {
  const sb = sandbox();
  const images = join(sb.dir, 'images');
  const texts = join(sb.dir, 'texts');
  mkdirSync(images);
  const names = ['receipt.png', 'label.png', 'small-print.png', 'codes-mono.png'];
  for (const n of names) copyFileSync(join(SAMPLES, n), join(images, n));
  // As a user would: autostart on, the step cache on (the sandbox turns both off for other tests).
  const env = { ...sb.env, DW_AUTOSTART: '1', DWD_CACHE_SIZE: '1G' };
  const make = () =>
    execFileSync(
      'make',
      ['-j4', '-C', join(ROOT, 'examples', 'ocr-folder'), `IMAGES=${images}`, `TEXTS=${texts}`, `DW=${process.execPath} ${DW}`],
      {
        env,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
  try {
    const first = make();
    assert.equal(first.match(/ run --quiet /g)?.length, names.length, first);
    for (const n of names) {
      const truth = readFileSync(join(SAMPLES, n.replace('.png', '.txt')), 'utf8')
        .split('\n')[0]!
        .trim();
      assert.ok(readFileSync(join(texts, `${n}.txt`), 'utf8').includes(truth), `${n}: "${truth}" read`);
    }
    const log = readFileSync(join(sb.env.XDG_STATE_HOME!, 'dw', 'dwd.log'), 'utf8');
    assert.equal(log.match(/"msg":"dwd listening"/g)?.length, 1, 'four parallel dw started one daemon');
    const mem = JSON.parse((await dw(sb, ['memory', '--json'])).stdout);
    const models = mem.runners.flatMap((r: { models: Array<{ uses: number }> }) => r.models);
    assert.equal(models.length, 3, 'det, cls and rec, loaded once');
    assert.ok(
      models.every((m: { uses: number }) => m.uses === names.length),
      'every run used the same sessions',
    );

    // Touched (same bytes, newer): make runs that one alone; dwd serves it from the step cache.
    const before = JSON.parse((await dw(sb, ['cache', '--json'])).stdout);
    const later = new Date(Date.now() + 5000);
    utimesSync(join(images, 'label.png'), later, later);
    const again = make();
    assert.deepEqual(again.match(/image=\S+/g), [`image='${join(images, 'label.png')}'`], again);
    const after = JSON.parse((await dw(sb, ['cache', '--json'])).stdout);
    assert.equal(after.hits, before.hits + 1);
    assert.equal(after.misses, before.misses);
  } finally {
    await dw(sb, ['stop']);
    sb.cleanup();
  }
});
