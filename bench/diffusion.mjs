// The stable-diffusion pipeline's own time per denoising step, outside onnxruntime: scaling the
// latents for the UNet, batching them for guidance, feeding and reading tensors (float16 exports
// converted both ways), the guidance formula and the scheduler's step. The UNet is synthetic
// (test/helpers/sd-export.ts: a few elementwise operators), so what onnxruntime spends is
// measured apart (UnetCall.runMs, timed around each session.run) and subtracted; a real UNet
// adds its own seconds per step on top, which this bench does not pretend to know.
// Usage: node --import tsx bench/diffusion.mjs [steps] [rounds]   (after npm run build)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { denoise } from '../dist/pipelines/stable-diffusion/denoise.js';
import { noiseAhead, noiseHere } from '../dist/pipelines/stable-diffusion/noise-ahead.js';
import { schedulerConfig } from '../dist/pipelines/stable-diffusion/scheduler-config.js';
import { makeScheduler } from '../dist/pipelines/stable-diffusion/schedulers.js';
import { unetCall, unetSignature } from '../dist/pipelines/stable-diffusion/unet.js';
import { sessionOptions } from '../dist/runner/sessions.js';
import { writeExport } from '../test/helpers/sd-export.ts';

const steps = Number(process.argv[2] ?? 50);
const rounds = Number(process.argv[3] ?? 5);
const dir = mkdtempSync(join(tmpdir(), 'dw-bench-sd-'));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const SD = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  timestep_spacing: 'trailing',
};

async function measure({ side, dtype, guidance, scheduler }) {
  const ex = writeExport(join(dir, `${dtype}`), { ks: 0.5, dtype });
  const unet = await ort.InferenceSession.create(join(ex.dir, 'unet', 'model.onnx'), sessionOptions({ providers: ['cpu'] }, 'cpu'));
  const sig = unetSignature(unet);
  const n = 4 * side * side;
  const ehs = new Float32Array((guidance === null ? 1 : 2) * 77 * 4).fill(0.1);
  const perStep = [];
  const inUnet = [];
  const waiting = [];
  for (let r = 0; r < rounds + 1; r++) {
    const call = unetCall(ort, unet, sig, ehs, guidance, { h: side, w: side });
    const s = makeScheduler(scheduler, schedulerConfig(scheduler, SD), steps);
    // As the pipeline does: schedulers that add noise on each step have it drawn ahead, in a worker.
    const noise = s.drawsAt(0) ? noiseAhead(r, n) : noiseHere(r, n);
    const latents = (await noise.take()).map((x) => x * s.initNoiseSigma);
    const timing = { noiseWaitMs: 0 };
    const t0 = performance.now();
    await denoise({
      scheduler: s,
      unet: call,
      latents,
      begin: 0,
      noise,
      signal: new AbortController().signal,
      onStep: () => {},
      timing,
    });
    const total = performance.now() - t0;
    noise.close();
    // Round 0 warms up V8 and onnxruntime's arenas; it is not counted.
    if (r === 0) continue;
    perStep.push((total - call.runMs) / steps);
    inUnet.push(call.runMs / steps);
    waiting.push(timing.noiseWaitMs / steps);
  }
  await unet.release();
  return { outside: median(perStep), inside: median(inUnet), waiting: median(waiting) };
}

const rows = [];
for (const side of [64, 128]) {
  for (const dtype of ['float32', 'float16']) {
    for (const [guidance, scheduler] of [
      [7.5, 'euler'],
      [null, 'euler'],
      [7.5, 'euler_a'],
      [7.5, 'ddim'],
    ]) {
      const m = await measure({ side, dtype, guidance, scheduler });
      rows.push([
        `4x${side}x${side}`,
        dtype,
        guidance === null ? 'none (1 pass)' : 'CFG, batch 2',
        scheduler,
        m.outside.toFixed(2),
        m.waiting.toFixed(2),
        (m.outside - m.waiting).toFixed(2),
        m.inside.toFixed(2),
      ]);
    }
  }
}
rmSync(dir, { recursive: true, force: true });
console.log(`node ${process.version}, ${steps} steps x ${rounds} rounds (median of rounds), synthetic UNet\n`);
console.log(
  '| latents | precision | guidance | scheduler | pipeline ms/step (outside onnxruntime) | of which waiting for noise | without that wait | synthetic UNet ms/step (inside) |',
);
console.log('|---|---|---|---|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
const worst = Math.max(...rows.map((r) => Number(r[4])));
const worstOwn = Math.max(...rows.map((r) => Number(r[6])));
console.log(
  `\nworst pipeline time per step: ${worst.toFixed(2)} ms; without waiting for noise drawn ahead: ${worstOwn.toFixed(2)} ms (target < 2 ms)`,
);
console.log(
  "(the worker draws a step's noise while the UNet runs; a step waits for it only when the UNet is faster than the drawing, as this synthetic one is)",
);
