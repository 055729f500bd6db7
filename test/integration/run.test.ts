// The point of dw: a second run from a new process loads nothing. Real dwd, real socket, real dw
// binary, real PaddleOCR models.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, readdirSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { dw, dwJson, fileDaemon, OCR_WORKFLOW, ROOT } from '../helpers/env.js';

const { sb, daemon } = fileDaemon();
const truth = readFileSync(join(ROOT, 'workflows', 'samples', 'receipt.txt'), 'utf8');

const firstLine = (s: string) =>
  s
    .split('\n')
    .find((l) => l.trim() !== '')!
    .trim();

test('cold run loads every model, then a run from a new process hits the cache for all of them', async () => {
  const cold = await dwJson(sb, ['run', OCR_WORKFLOW]);
  assert.equal(cold.ran.code, 0, cold.ran.stderr);
  assert.equal(cold.json.ok, true);
  assert.deepEqual(cold.json.workflow, { id: 'ocr', path: OCR_WORKFLOW });
  assert.deepEqual(
    cold.json.models.map((m: any) => [m.role, m.cache]),
    [
      ['det', 'loaded'],
      ['cls', 'loaded'],
      ['rec', 'loaded'],
    ],
  );
  for (const m of cold.json.models) {
    assert.equal(m.provider, 'cpu', 'no CUDA here: the cuda entry is skipped and cpu is used');
    assert.match(m.key, /^[0-9a-f]{64}:[0-9a-f]{8}$/);
    assert.ok(m.load_ms > 0);
    assert.ok(m.path.endsWith('.onnx'));
  }
  assert.ok(cold.json.results.read.text.includes(firstLine(truth)), cold.json.results.read.text);
  for (const k of ['total_ms', 'run_ms', 'load_ms', 'queue_ms']) assert.equal(typeof cold.json.timings[k], 'number');

  const warm = await dwJson(sb, ['run', OCR_WORKFLOW]);
  assert.equal(warm.ran.code, 0, warm.ran.stderr);
  assert.deepEqual(
    warm.json.models.map((m: any) => m.cache),
    ['hit', 'hit', 'hit'],
  );
  assert.deepEqual(
    warm.json.models.map((m: any) => m.key),
    cold.json.models.map((m: any) => m.key),
  );
  assert.equal(warm.json.timings.load_ms, 0);
  assert.equal(warm.json.results.read.text, cold.json.results.read.text);
});

test('changing only a variable reloads nothing; a second workflow sharing model files shares their sessions', async () => {
  await dwJson(sb, ['run', OCR_WORKFLOW]);
  const stricter = await dwJson(sb, ['run', OCR_WORKFLOW, '--arg', 'min_score=0.99']);
  assert.equal(stricter.ran.code, 0, stricter.ran.stderr);
  assert.deepEqual(
    stricter.json.models.map((m: any) => m.cache),
    ['hit', 'hit', 'hit'],
  );
  assert.ok(stricter.json.results.read.lines.every((l: any) => l.score >= 0.99));

  // Another workflow, elsewhere, without the direction classifier, pointing at the same det/rec files.
  const wf = JSON.parse(readFileSync(OCR_WORKFLOW, 'utf8'));
  wf.id = 'ocr-nocls';
  delete wf.steps[0].pipeline.models.cls;
  wf.variables.image = join(ROOT, 'workflows', 'samples', 'receipt.png');
  delete wf.$schema;
  const other = join(sb.dir, 'other.json');
  writeFileSync(other, JSON.stringify(wf));
  const shared = await dwJson(sb, ['run', other]);
  assert.equal(shared.ran.code, 0, shared.ran.stderr);
  assert.deepEqual(
    shared.json.models.map((m: any) => [m.role, m.cache]),
    [
      ['det', 'hit'],
      ['rec', 'hit'],
    ],
  );
});

test('an --arg image relative to the caller, result.save written atomically under --output-dir', async () => {
  const work = join(sb.dir, 'work');
  const out = join(sb.dir, 'out');
  const wf = JSON.parse(readFileSync(OCR_WORKFLOW, 'utf8'));
  wf.steps[0].result = { content_type: 'application/json', save: true };
  wf.variables.image = join(ROOT, 'workflows', 'samples', 'receipt.png');
  delete wf.$schema;
  writeFileSync(join(sb.dir, 'save.json'), JSON.stringify(wf));
  const { mkdirSync } = await import('node:fs');
  mkdirSync(work, { recursive: true });
  copyFileSync(join(ROOT, 'workflows', 'samples', 'receipt.png'), join(work, 'scan.png'));
  const r = await dwJson(sb, ['run', '../save.json', '--arg', 'image=scan.png', '-o', '../out'], { cwd: work });
  assert.equal(r.ran.code, 0, r.ran.stderr);
  assert.deepEqual(readdirSync(out), ['ocr-read.json'], 'only the output, no temp file left behind');
  const saved = JSON.parse(readFileSync(join(out, 'ocr-read.json'), 'utf8'));
  assert.equal(saved.text, r.json.results.read.text);
  assert.deepEqual(
    r.json.outputs.map((o: any) => [o.step, o.path, o.content_type]),
    [['read', join(out, 'ocr-read.json'), 'application/json']],
  );
});

test('human output: text on stdout, progress on stderr', async () => {
  const r = await dw(sb, ['run', OCR_WORKFLOW]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.includes(firstLine(truth)));
  assert.doesNotMatch(r.stdout, /dw:/);
  assert.match(r.stderr, /read: det already loaded/);
  assert.match(r.stderr, /read: done in \d+ ms/);
});

test('bad input gets a stable code and exit code before any model loads, and the daemon carries on', async () => {
  const cases: Array<{ args: string[]; code: string; exit: number; says: RegExp }> = [
    {
      args: ['run', OCR_WORKFLOW, '--arg', 'imgae=x.png'],
      code: 'DW_ERR_UNKNOWN_VARIABLE',
      exit: 3,
      says: /does not declare "imgae"; declared variables: image, min_score/,
    },
    { args: ['run', OCR_WORKFLOW, '--arg', 'min_score=high'], code: 'DW_ERR_BAD_ARGUMENT', exit: 3, says: /"min_score" is a number/ },
    { args: ['run', OCR_WORKFLOW, '--arg', 'image=missing.png'], code: 'DW_ERR_FILE_NOT_FOUND', exit: 3, says: /missing\.png/ },
    { args: ['run', join(sb.dir, 'nope.json')], code: 'DW_ERR_FILE_NOT_FOUND', exit: 3, says: /cannot read workflow/ },
  ];
  for (const c of cases) {
    const r = await dwJson(sb, c.args);
    assert.equal(r.ran.code, c.exit, `${c.args.join(' ')}: ${r.ran.stderr}`);
    assert.equal(r.json.ok, false);
    assert.equal(r.json.error.code, c.code);
    assert.match(r.json.error.message, c.says);
    assert.match(r.ran.stderr, new RegExp(`\\[${c.code}\\]`));
  }
  const wf = JSON.parse(readFileSync(OCR_WORKFLOW, 'utf8'));
  wf.steps[0].pipeline.models.det = './models/missing.onnx';
  wf.variables.image = join(ROOT, 'workflows', 'samples', 'receipt.png');
  writeFileSync(join(sb.dir, 'nomodel.json'), JSON.stringify(wf));
  const r = await dwJson(sb, ['run', join(sb.dir, 'nomodel.json')]);
  assert.equal(r.ran.code, 3);
  assert.equal(r.json.error.code, 'DW_ERR_MODEL_NOT_FOUND');
  assert.match(r.json.error.message, /models\/missing\.onnx/);

  const again = await dwJson(sb, ['run', OCR_WORKFLOW]);
  assert.equal(again.ran.code, 0);
  assert.deepEqual(
    again.json.models.map((m: any) => m.cache),
    ['hit', 'hit', 'hit'],
  );
});

test('a model file that is not ONNX fails with DW_ERR_MODEL_LOAD and leaves the other sessions loaded', async () => {
  const bogus = join(sb.dir, 'bogus.onnx');
  writeFileSync(bogus, 'this is not a protobuf');
  const wf = JSON.parse(readFileSync(OCR_WORKFLOW, 'utf8'));
  wf.steps[0].pipeline.models.cls = bogus;
  wf.variables.image = join(ROOT, 'workflows', 'samples', 'receipt.png');
  writeFileSync(join(sb.dir, 'bogus.json'), JSON.stringify(wf));
  const r = await dwJson(sb, ['run', join(sb.dir, 'bogus.json')]);
  assert.equal(r.ran.code, 1);
  assert.equal(r.json.error.code, 'DW_ERR_MODEL_LOAD');
  assert.match(r.json.error.message, /bogus\.onnx/);
  // cpu was the last provider to try: its failure is the error, not a fallback worth a log line.
  assert.doesNotMatch(daemon().log(), /bogus\.onnx: loading with cpu failed, trying the next provider/);
  const again = await dwJson(sb, ['run', OCR_WORKFLOW]);
  assert.deepEqual(
    again.json.models.map((m: any) => m.cache),
    ['hit', 'hit', 'hit'],
  );
});

test('a provider that fails to load falls back to the next one, and the one used is reported', async () => {
  // webgpu ships in onnxruntime-node but cannot start without a GPU adapter: a real load failure.
  const wf = JSON.parse(readFileSync(OCR_WORKFLOW, 'utf8'));
  wf.steps[0].pipeline.providers = ['webgpu', 'cpu'];
  wf.variables.image = join(ROOT, 'workflows', 'samples', 'receipt.png');
  writeFileSync(join(sb.dir, 'webgpu.json'), JSON.stringify(wf));
  const r = await dwJson(sb, ['run', join(sb.dir, 'webgpu.json')]);
  assert.equal(r.ran.code, 0, r.ran.stderr);
  assert.deepEqual(
    r.json.models.map((m: any) => [m.provider, m.cache]),
    [
      ['cpu', 'loaded'],
      ['cpu', 'loaded'],
      ['cpu', 'loaded'],
    ],
    'other session options: other sessions',
  );
  assert.match(daemon().log(), /loading with webgpu failed, trying the next provider/);
  assert.match(daemon().log(), /provider cuda not installed, skipped/);
  // Each file now has two sessions: dw memory tells them apart by their options.
  const shown = await dw(sb, ['memory']);
  assert.match(shown.stdout, /MODEL +KEY +OPTIONS +PROVIDER/);
  assert.match(shown.stdout, /ch_PP-OCRv4_det_infer\.onnx +\w{8} +webgpu,cpu +cpu/);
  assert.match(shown.stdout, /ch_PP-OCRv4_det_infer\.onnx +\w{8} +cuda,cpu +cpu/);
});

test('dw validate: a valid workflow summarised, an invalid one with every problem and its JSON path, exit 3', async () => {
  const ok = await dw(sb, ['validate', OCR_WORKFLOW]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /valid workflow "ocr": 1 step \(read \[paddle-ocr\]\), 4 model files/);
  const bad = join(sb.dir, 'bad.json');
  writeFileSync(
    bad,
    JSON.stringify({
      id: 'bad',
      variables: { image: 'x.png' },
      steps: [{ name: 'read', pipeline: { type: 'paddle-ocr', models: { det: 'd.onnx' }, arguments: { image: 'variable:img' } } }],
    }),
  );
  const r = await dw(sb, ['validate', bad]);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /\[DW_ERR_WORKFLOW_INVALID\]: .*bad\.json is not a valid workflow \(3 problems\)/);
  assert.match(r.stderr, /\$\.steps\[0\]\.pipeline\.models: "paddle-ocr" needs a "rec" model/);
  assert.match(r.stderr, /\$\.steps\[0\]\.pipeline\.arguments\.image: unknown variable "img"; declared: image/);
  const broken = join(sb.dir, 'broken.json');
  writeFileSync(broken, '{ "id": "x",\n  "steps": [ }');
  const b = await dw(sb, ['validate', broken]);
  assert.equal(b.code, 3);
  assert.match(b.stderr, /broken\.json:2:14: not valid JSON/);
});

test('dw validate refuses what a run would refuse, all at once, and the run refuses it the same way before loading a model', async () => {
  const wf = join(sb.dir, 'args.json');
  writeFileSync(
    wf,
    JSON.stringify({
      id: 'args',
      variables: { image: join(ROOT, 'workflows', 'samples', 'receipt.png') },
      steps: [
        {
          name: 'crop',
          task: { type: 'image_crop', arguments: { image: 'variable:image', left: '10', top: 0, width: 10, height: 10, colour: 'red' } },
        },
        { name: 'say', task: { type: 'text_template', arguments: { template: 'hi' } }, result: { content_type: 'image/png', save: true } },
        { name: 'read', workflow: { path: 'missing.json' } },
      ],
    }),
  );
  const v = await dw(sb, ['validate', wf]);
  const r = await dw(sb, ['run', wf]);
  assert.equal(v.code, 3, v.stderr);
  assert.equal(r.code, 3, r.stderr);
  for (const what of [
    /unknown argument "colour"/,
    /"left" must be an integer from 0 to 16384, got string "10"/,
    /image\/png needs an image, but a text_template step gives text/,
    /step "read": cannot read workflow .*missing\.json/,
  ]) {
    assert.match(v.stderr, what);
    assert.match(r.stderr, what);
  }
  assert.match(v.stderr, /args\.json: 4 problems:/);
  assert.doesNotMatch(r.stderr, /loaded|started/, 'nothing ran');
});
