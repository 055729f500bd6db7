// Issue 5 end to end: the bundled multi-step workflows on a real dwd with the real models —
// Silero VAD, the generic onnx pipeline, tasks, a sub-workflow and a plugin — plus progress and
// cancellation between frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dw, dwJson, fileDaemon, OCR_WORKFLOW, pluginWorkflow, ROOT, sandbox, spawnDw, withDaemon } from '../helpers/env.js';
import { decodeWav, encodeWav, durationS } from '../../src/media/audio.js';
import { readNpy } from '../../src/media/npy.js';
import { DEFAULT_MAX_FRAME } from '../../src/protocol/framing.js';

const WF = (name: string) => join(ROOT, 'workflows', `${name}.json`);
const truth = JSON.parse(readFileSync(join(ROOT, 'workflows', 'samples', 'speech.json'), 'utf8')) as {
  segments: Array<{ start_s: number; end_s: number }>;
};

const { sb } = fileDaemon();

function assertSegments(got: Array<{ start_s: number; end_s: number }>) {
  assert.equal(got.length, truth.segments.length, JSON.stringify(got));
  got.forEach((g, i) => {
    const t = truth.segments[i]!;
    assert.ok(Math.abs(g.start_s - t.start_s) <= 0.15, `segment ${i} starts at ${g.start_s}, truth ${t.start_s}`);
    assert.ok(Math.abs(g.end_s - t.end_s) <= 0.15, `segment ${i} ends at ${g.end_s}, truth ${t.end_s}`);
  });
}

test("vad.json finds the sample's speech within 150 ms of the truth, and a second run hits the cache", async () => {
  const cold = await dwJson(sb, ['run', WF('vad')]);
  assert.equal(cold.ran.code, 0, cold.ran.stderr);
  assertSegments(cold.json.results.speech.segments);
  const r = cold.json.results.speech;
  assert.ok(r.speech_ratio > 0.4 && r.speech_ratio < 0.7, String(r.speech_ratio));
  assert.equal(r.duration_s, 12);
  assert.deepEqual(r.audio.kind, 'audio', 'the speech-only audio shows as a summary, not samples');
  assert.deepEqual(
    cold.json.models.map((m: any) => m.cache),
    ['loaded'],
  );
  const warm = await dwJson(sb, ['run', WF('vad')]);
  assert.deepEqual(
    warm.json.models.map((m: any) => m.cache),
    ['hit'],
  );
  assert.deepEqual(warm.json.results.speech.segments, cold.json.results.speech.segments);
});

test('a 44.1 kHz stereo WAV gives the same segments (resampled to 16 kHz mono inside)', async () => {
  const src = decodeWav(readFileSync(join(ROOT, 'workflows', 'samples', 'speech.wav')), 'speech.wav');
  // Nearest-sample upsampling to 44.1 kHz, two channels: good enough to carry the speech.
  const n = Math.floor((src.samples.length * 44100) / src.sample_rate);
  const st = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) st[2 * i] = st[2 * i + 1] = src.samples[Math.floor((i * src.sample_rate) / 44100)]!;
  const file = join(sb.dir, 'stereo.wav');
  writeFileSync(file, encodeWav({ kind: 'audio', samples: st, sample_rate: 44100, channels: 2 }));
  const { ran, json } = await dwJson(sb, ['run', WF('vad'), '--arg', `audio=${file}`]);
  assert.equal(ran.code, 0, ran.stderr);
  assertSegments(json.results.speech.segments);
});

test('speech-only.json chains VAD into audio_save: the saved WAV is exactly the speech', async () => {
  const { ran, json } = await dwJson(sb, ['run', WF('speech-only'), '--output-dir', join(sb.dir, 'out')]);
  assert.equal(ran.code, 0, ran.stderr);
  const out = join(sb.dir, 'out', 'speech-only-speech.wav');
  const wav = decodeWav(readFileSync(out), out);
  const speech = json.results.find.segments.reduce((s: number, g: any) => s + g.end_s - g.start_s, 0);
  assert.equal(wav.sample_rate, 22050);
  assert.ok(Math.abs(durationS(wav) - speech) < 0.01, `${durationS(wav)} s of audio for ${speech} s of segments`);
});

test('receipt-total.json crops, runs ocr.json as a sub-workflow on the pixels, and shares its models', async () => {
  await dwJson(sb, ['run', OCR_WORKFLOW]);
  const { ran, json } = await dwJson(sb, ['run', WF('receipt-total'), '--output-dir', join(sb.dir, 'out')]);
  assert.equal(ran.code, 0, ran.stderr);
  assert.deepEqual(json.results.crop, { kind: 'image', width: 600, height: 45, channels: 3 });
  assert.equal(json.results.ocr.read.text, 'TOTAL 15.90');
  assert.equal(json.results.total.text, 'TOTAL 15.90');
  assert.deepEqual(
    json.models.map((m: any) => [m.step, m.role, m.cache]),
    [
      ['ocr/read', 'det', 'hit'],
      ['ocr/read', 'cls', 'hit'],
      ['ocr/read', 'rec', 'hit'],
    ],
  );
  assert.equal(readFileSync(join(sb.dir, 'out', 'receipt-total-total.txt'), 'utf8'), 'TOTAL 15.90\n');
  const text = await dw(sb, ['run', WF('receipt-total'), '--output-dir', join(sb.dir, 'out')]);
  assert.equal(text.stdout, 'TOTAL 15.90\n', "without --json: the last step's text, not every step's JSON");
});

test('text-direction.json runs the direction classifier through the generic onnx pipeline and saves .npy', async () => {
  const { ran, json } = await dwJson(sb, ['run', WF('text-direction'), '--output-dir', join(sb.dir, 'out')]);
  assert.equal(ran.code, 0, ran.stderr);
  const probs = json.results.direction['softmax_0.tmp_0'];
  assert.deepEqual([probs.type, probs.dims], ['float32', [1, 2]]);
  assert.ok(probs.data[0] > 0.9, `an upright line reads as upright: ${probs.data}`);
  const npy = readNpy(readFileSync(join(sb.dir, 'out', 'text-direction-direction.npy')), 'npy');
  assert.deepEqual(
    [...npy.data],
    probs.data.map((x: number) => Math.fround(x)),
  );
});

test('a plugin pipeline runs from its module file, with the session cache and progress', async () => {
  const cold = await dwJson(sb, ['run', WF('speech-per-second')]);
  assert.equal(cold.ran.code, 0, cold.ran.stderr);
  const levels: number[] = cold.json.results.levels.per_second;
  assert.equal(levels.length, 12);
  // Seconds 1 and 3 are inside the first two phrases; 5 is in a gap.
  assert.ok(levels[1]! > 0.8 && levels[3]! > 0.8 && levels[5]! < 0.3, levels.join(' '));
  // vad.json ran the same model file with the same options: the plugin shares that session.
  assert.deepEqual(
    cold.json.models.map((m: any) => m.cache),
    ['hit'],
  );
  assert.match(cold.ran.stderr, /levels: \d+\/375 frames/);
});

test('a plugin that is not a pipeline fails with DW_ERR_PLUGIN and the daemon carries on', async () => {
  const plugin = join(sb.dir, 'bad-plugin.mjs');
  writeFileSync(plugin, 'export const hello = 1;\n');
  const wf = join(sb.dir, 'bad.json');
  writeFileSync(
    wf,
    JSON.stringify({ id: 'bad', steps: [{ name: 'x', pipeline: { type: './bad-plugin.mjs', models: {}, arguments: {} } }] }),
  );
  const { ran, json } = await dwJson(sb, ['run', wf]);
  assert.equal(ran.code, 3);
  assert.equal(json.error.code, 'DW_ERR_PLUGIN');
  assert.match(json.error.message, /must export a pipeline .* it exports: hello/);
  // Fixing the file is seen at once: the module's hash is part of its identity.
  writeFileSync(plugin, 'export default { roles: [], async run(args) { return { echo: args.v }; } };\n');
  writeFileSync(
    wf,
    JSON.stringify({ id: 'bad', steps: [{ name: 'x', pipeline: { type: './bad-plugin.mjs', models: {}, arguments: { v: 7 } } }] }),
  );
  const fixed = await dwJson(sb, ['run', wf]);
  assert.equal(fixed.ran.code, 0, fixed.ran.stderr);
  assert.deepEqual(fixed.json.results.x, { echo: 7 });
});

test('plugin results: a circular one is named before the step is done, undefined is null, one too large gets its own code', async () => {
  const circular = await dwJson(sb, [
    'run',
    pluginWorkflow(sb.dir, 'circular', 'const a = { b: { list: [1] } }; a.b.list.push(a); return a;'),
  ]);
  assert.equal(circular.ran.code, 1);
  assert.equal(circular.json.error.code, 'DW_ERR_RUN_FAILED');
  assert.match(circular.json.error.message, /step "x" \(\.\/circular\.mjs\): its result refers to itself \(at \$\.b\.list\[1\]\)/);
  assert.doesNotMatch(circular.ran.stderr, /x: done/, 'progress never said the step was done');

  for (const [name, body, why] of [
    ['fn', 'return { f: () => 1 };', /its result holds a function \(at \$\.f\)/],
    ['promise', 'return [Promise.resolve(1)];', /its result holds a promise \(await it before returning\) \(at \$\[0\]\)/],
    ['deep', 'let a = []; for (let i = 0; i < 100000; i++) a = [a]; return a;', /its result is nested deeper than 256 levels/],
  ] as const) {
    const r = await dwJson(sb, ['run', pluginWorkflow(sb.dir, name, body)]);
    assert.equal(r.json.error?.code, 'DW_ERR_RUN_FAILED', name);
    assert.match(r.json.error.message, why);
  }
  // What JSON.stringify would make {} of, said plainly.
  const kinds = await dwJson(sb, [
    'run',
    pluginWorkflow(sb.dir, 'kinds', 'return { d: new Date(0), m: new Map([["a", 1]]), s: new Set([2]), e: new TypeError("bad") };'),
  ]);
  assert.deepEqual(kinds.json.results.x, { d: '1970-01-01T00:00:00.000Z', m: { a: 1 }, s: [2], e: { error: 'TypeError', message: 'bad' } });

  const nothing = await dwJson(sb, ['run', pluginWorkflow(sb.dir, 'nothing', 'return undefined;')]);
  assert.equal(nothing.ran.code, 0, nothing.ran.stderr);
  assert.deepEqual(nothing.json.results, { x: null });

  // 70 MB of text: more than a run's results may take (16 MiB).
  const big = 'const s = "x".repeat(70 * 1024 * 1024); return { s };';
  const tooLarge = await dwJson(sb, ['run', pluginWorkflow(sb.dir, 'big', big)]);
  assert.equal(tooLarge.ran.code, 1);
  assert.equal(tooLarge.json.error.code, 'DW_ERR_RESULT_TOO_LARGE');
  assert.match(
    tooLarge.json.error.message,
    /step "x" \(\.\/big\.mjs\): its result is 70\.0 MB as JSON, more than the 16\.0 MB a run's results may take; save it to a file/,
  );
  // Saved, it goes to its file, and the results say where instead of holding it.
  const out = join(sb.dir, 'bigsaved-out');
  const saved = await dwJson(sb, [
    'run',
    pluginWorkflow(sb.dir, 'bigsaved', big, { result: { content_type: 'application/json', save: 'big.json' } }),
    '-o',
    out,
  ]);
  assert.equal(saved.ran.code, 0, saved.ran.stderr);
  assert.equal(saved.json.results.x.kind, 'saved');
  assert.equal(saved.json.outputs[0].bytes, statSync(join(out, 'big.json')).size);
  assert.ok(statSync(join(out, 'big.json')).size > 70 * 1024 * 1024);
});

test('the daemon gives back what it relayed: after four 15 MB results it holds less than three of them more than before', {
  timeout: 120_000,
}, async () => {
  // Autostarted, as users get it (with its malloc settings).
  const own = sandbox();
  const env = { DW_AUTOSTART: '1' };
  try {
    const wf = pluginWorkflow(own.dir, 'big', 'return { s: "x".repeat(args.mb * 1048576) };', {
      variables: { mb: 0 },
      arguments: { mb: 'variable:mb' },
    });
    assert.equal((await dw(own, ['run', wf, '-q'], { env })).code, 0);
    const rss = async () => (await dwJson(own, ['memory'])).json.daemon.rss as number;
    const before = await rss();
    for (let i = 0; i < 4; i++) assert.equal((await dw(own, ['run', wf, '--arg', 'mb=15', '-q'], { env })).code, 0);
    await new Promise((r) => setTimeout(r, 1000));
    const after = await rss();
    assert.ok(after - before < 45 * 1048576, `daemon rss ${before} -> ${after}`);
  } finally {
    await dw(own, ['stop']);
    own.cleanup();
  }
});

test('Ctrl-C during a long VAD run stops it between frames: the runner is not killed', async () => {
  const before = JSON.parse((await dw(sb, ['status', '--json'])).stdout);
  // Ten minutes of quiet noise: about 19k model calls, far longer than the cancel takes.
  const n = 16000 * 600;
  const samples = new Float32Array(n);
  let seed = 7;
  for (let i = 0; i < n; i++) samples[i] = ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 0.01;
  const file = join(sb.dir, 'long.wav');
  writeFileSync(file, encodeWav({ kind: 'audio', samples, sample_rate: 16000, channels: 1 }));
  const run = spawnDw(sb, ['run', WF('speech-only'), '--arg', `audio=${file}`, '--output-dir', join(sb.dir, 'cancelled')]);
  await run.stderrMatches(/find: \d+\/18750 frames/);
  run.proc.kill('SIGINT');
  const r = await run.done;
  assert.equal(r.code, 130, r.stderr);
  assert.equal(existsSync(join(sb.dir, 'cancelled')), false, 'nothing written');
  const after = JSON.parse((await dw(sb, ['status', '--json'])).stdout);
  assert.equal(after.runners[0].pid, before.runners[0].pid, 'the pipeline saw the cancel between frames; nothing had to be killed');
  assert.equal(after.runners[0].restarts, before.runners[0].restarts);
  const next = await dwJson(sb, ['run', WF('vad')]);
  assert.deepEqual(
    next.json.models.map((m: any) => m.cache),
    ['hit'],
  );
});

/** A workflow in the sandbox: 12 s of speech at 384 kHz, saved by `saves` audio_save steps, then `tail` steps. */
function bigOutputs(name: string, saves: number, tail: object[] = []): string {
  const file = join(sb.dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      id: name,
      variables: { audio: join(ROOT, 'workflows', 'samples', 'speech.wav') },
      steps: [
        { name: 'up', task: { type: 'audio_resample', arguments: { audio: 'variable:audio', sample_rate: 384000 } } },
        ...Array.from({ length: saves }, (_, i) => ({
          name: `s${i + 1}`,
          task: { type: 'audio_save', arguments: { audio: 'previous_result:up' } },
        })),
        ...tail,
      ],
    }),
  );
  return file;
}

test('saved outputs larger than one protocol frame arrive whole: 6 WAVs of 9.2 MB, 70 MiB as base64', async () => {
  const out = join(sb.dir, 'big-out');
  const { ran, json } = await dwJson(sb, ['run', bigOutputs('big', 6), '--output-dir', out]);
  assert.equal(ran.code, 0, ran.stderr);
  const wavBytes = 44 + 12 * 384000 * 2;
  assert.deepEqual(
    json.outputs.map((o: any) => o.bytes),
    Array(6).fill(wavBytes),
  );
  const base64Total = Math.ceil((6 * wavBytes) / 3) * 4;
  assert.ok(base64Total > DEFAULT_MAX_FRAME, 'more than one frame could carry');
  assert.deepEqual(
    readdirSync(out).sort(),
    ['big-s1.wav', 'big-s2.wav', 'big-s3.wav', 'big-s4.wav', 'big-s5.wav', 'big-s6.wav'],
    'no temporary file left',
  );
  const wav = decodeWav(readFileSync(join(out, 'big-s6.wav')), 'big-s6.wav');
  assert.equal(wav.sample_rate, 384000);
  assert.equal(durationS(wav), 12);
  assert.ok(readFileSync(join(out, 'big-s1.wav')).equals(readFileSync(join(out, 'big-s6.wav'))));
});

test('a run that fails after an output streamed leaves no file, not even a temporary one', async () => {
  const out = join(sb.dir, 'failed-out');
  const file = bigOutputs('fails-late', 1, [
    { name: 'bad', task: { type: 'json_pick', arguments: { value: 'previous_result:up', path: 'no.such.field' } } },
  ]);
  const { ran, json } = await dwJson(sb, ['run', file, '--output-dir', out]);
  assert.notEqual(ran.code, 0);
  assert.equal(json.error.code, 'DW_ERR_BAD_REFERENCE');
  // The folder exists because s1's bytes arrived (and went to a temporary file) before "bad" failed.
  assert.ok(existsSync(out));
  assert.deepEqual(readdirSync(out), []);
});

test('streaming 74 MB of outputs leaves the daemon holding pieces, not outputs: its peak memory stays far below their size', async () => {
  await withDaemon([], async (own, d) => {
    const peak = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${d.proc.pid}/status`, 'utf8'))![1]) * 1024;
    const file = join(own.dir, 'big.json');
    writeFileSync(file, readFileSync(bigOutputs('big8', 8)));
    const before = peak();
    const { ran, json } = await dwJson(own, ['run', file, '--output-dir', join(own.dir, 'out')]);
    assert.equal(ran.code, 0, ran.stderr);
    const total = json.outputs.reduce((sum: number, o: any) => sum + o.bytes, 0);
    assert.ok(total > 70 * 1048576, String(total));
    // Before flow control and small pieces the daemon peaked 190-325 MB above idle for this run.
    const rise = peak() - before;
    assert.ok(rise < total, `the daemon's peak rose ${(rise / 1048576).toFixed(0)} MB for ${(total / 1048576).toFixed(0)} MB of outputs`);
    // Pieces waiting on one socket share one drain listener (16 of them once tripped Node's leak warning).
    assert.doesNotMatch(d.log(), /Warning/);
  });
});

test('dw killed (SIGTERM) while outputs stream leaves no temporary file behind', async () => {
  const out = join(sb.dir, 'killed-out');
  const run = spawnDw(sb, ['run', bigOutputs('killed', 8), '--output-dir', out]);
  let exited = false;
  void run.done.then(() => (exited = true));
  // Wait for the first piece to reach a temporary file, then kill dw mid-stream.
  while (!exited && !(existsSync(out) && readdirSync(out).some((f) => f.endsWith('.tmp')))) await new Promise((r) => setTimeout(r, 5));
  assert.equal(exited, false, 'the outputs streamed long enough to interrupt');
  run.proc.kill('SIGTERM');
  const r = await run.done;
  assert.equal(r.code, 143, r.stderr);
  assert.deepEqual(readdirSync(out), []);
  // The daemon cancelled the run of the client that went away, and carries on.
  const next = await dwJson(sb, ['run', WF('vad')]);
  assert.equal(next.ran.code, 0, next.ran.stderr);
});
