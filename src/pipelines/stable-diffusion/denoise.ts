// The denoising loop: at each step, scale the latents for the UNet, get its guided prediction, let
// the scheduler step. The loop is where a cancel takes effect (between steps: at most one UNet call
// late) and where progress is told, with the time each step took.
import type { NoiseSource } from './noise-ahead.js';
import type { Scheduler } from './schedulers.js';
import type { UnetCall } from './unet.js';

export interface DenoiseOptions {
  scheduler: Scheduler;
  unet: UnetCall;
  /** The starting latents, updated in place. */
  latents: Float32Array;
  /** Index of the first step (image-to-image starts part way). */
  begin: number;
  /** Fresh noise for the steps that add some (scheduler.drawsAt), taken in order. */
  noise: NoiseSource;
  signal: AbortSignal;
  /** After each step: how many have run, of how many, and the milliseconds that step took. */
  onStep: (done: number, total: number, ms: number) => void;
  /** Where the time went, for bench/diffusion.mjs: milliseconds spent waiting for noise drawn ahead. */
  timing?: { noiseWaitMs: number };
}

/** `out` = `x` times `s`. A function of its own: V8 optimizes this loop here, inside the async loop it did not (0.6 ms a step at 1024x1024). */
function scaled(x: Float32Array, s: number, out: Float32Array): void {
  for (let k = 0; k < x.length; k++) out[k] = x[k]! * s;
}

export async function denoise(o: DenoiseOptions): Promise<Float32Array> {
  const { scheduler, latents } = o;
  const input = new Float32Array(latents.length);
  const total = scheduler.timesteps.length - o.begin;
  for (let i = o.begin; i < scheduler.timesteps.length; i++) {
    if (o.signal.aborted) throw o.signal.reason;
    const t0 = performance.now();
    scaled(latents, scheduler.inputScale(i), input);
    const pred = await o.unet.predict(input, scheduler.timesteps[i]!);
    // Drawn ahead (noise-ahead.ts) while the UNet ran: ready by now.
    const w0 = performance.now();
    const fresh = scheduler.drawsAt(i) ? await o.noise.take() : null;
    if (o.timing) o.timing.noiseWaitMs += performance.now() - w0;
    scheduler.step(i, pred, latents, () => {
      if (!fresh) throw new Error(`the ${scheduler.name} scheduler drew noise at step ${i}, where it said it would not`);
      return fresh;
    });
    o.onStep(i - o.begin + 1, total, performance.now() - t0);
  }
  return latents;
}
