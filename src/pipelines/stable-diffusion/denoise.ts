// The denoising loop: at each step, scale the latents for the UNet, get its guided prediction, let
// the scheduler step. The loop is where a cancel takes effect (between steps: at most one UNet call
// late) and where progress is told, with the time each step took.
import type { Scheduler } from './schedulers.js';
import type { UnetCall } from './unet.js';

export interface DenoiseOptions {
  scheduler: Scheduler;
  unet: UnetCall;
  /** The starting latents, updated in place. */
  latents: Float32Array;
  /** Index of the first step (image-to-image starts part way). */
  begin: number;
  /** Fresh noise for schedulers that add some on a step. */
  draw: () => Float32Array;
  signal: AbortSignal;
  /** After each step: how many have run, of how many, and the milliseconds that step took. */
  onStep: (done: number, total: number, ms: number) => void;
}

export async function denoise(o: DenoiseOptions): Promise<Float32Array> {
  const { scheduler, latents } = o;
  const input = new Float32Array(latents.length);
  const total = scheduler.timesteps.length - o.begin;
  for (let i = o.begin; i < scheduler.timesteps.length; i++) {
    if (o.signal.aborted) throw o.signal.reason;
    const t0 = performance.now();
    const scale = scheduler.inputScale(i);
    for (let k = 0; k < latents.length; k++) input[k] = latents[k]! * scale;
    const pred = await o.unet.predict(input, scheduler.timesteps[i]!);
    scheduler.step(i, pred, latents, o.draw);
    o.onStep(i - o.begin + 1, total, performance.now() - t0);
  }
  return latents;
}
