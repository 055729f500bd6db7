// The four schedulers, transcribed from diffusers' set_timesteps and step (eta = 0 for DDIM, no
// churn for Euler, as StableDiffusionPipeline calls them):
//   euler    EulerDiscreteScheduler          src/diffusers/schedulers/scheduling_euler_discrete.py
//   euler_a  EulerAncestralDiscreteScheduler src/diffusers/schedulers/scheduling_euler_ancestral_discrete.py
//   ddim     DDIMScheduler                   src/diffusers/schedulers/scheduling_ddim.py
//   lcm      LCMScheduler                    src/diffusers/schedulers/scheduling_lcm.py
// A step updates the latents in place: the loop calls it once per UNet call, on 16k-65k floats,
// so it allocates nothing (bench/diffusion.mjs measures it).
import { alphasCumprod, type SchedulerConfig, type SchedulerName } from './scheduler-config.js';

export interface Scheduler {
  name: SchedulerName;
  /** The whole schedule's timesteps, as the UNet is given them (float for Euler, integer for DDIM and LCM). */
  timesteps: number[];
  /** Euler family: one sigma per timestep plus the final one; empty for DDIM and LCM. */
  sigmas: number[];
  /** The initial noise is multiplied by this. */
  initNoiseSigma: number;
  /** scale_model_input: the UNet's input at step i is the latents times this. */
  inputScale(i: number): number;
  /** scheduler.step at index i: `sample` becomes the previous (less noisy) sample. `draw` gives fresh noise. */
  step(i: number, modelOutput: Float32Array, sample: Float32Array, draw: () => Float32Array): void;
  /** Whether step i draws fresh noise: the pipeline then has it drawn ahead, while the UNet runs. */
  drawsAt(i: number): boolean;
  /** add_noise for image-to-image: clean latents `x0` noised to the level of step i, in place. */
  addNoise(x0: Float32Array, noise: Float32Array, i: number): void;
}

/** np.round: halves go to the even neighbour (np.arange(1000, 0, -62.5) has them). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** np.linspace(start, stop, n) as NumPy computes it: start + i · step, the last one exactly stop. */
function linspace(start: number, stop: number, n: number): number[] {
  if (n === 1) return [start];
  const step = (stop - start) / (n - 1);
  return Array.from({ length: n }, (_, i) => (n > 1 && i === n - 1 ? stop : start + i * step));
}

/** The three spacings of "Common Diffusion Noise Schedules and Sample Steps are Flawed", table 2, as set_timesteps has them. */
function spacedTimesteps(c: SchedulerConfig, steps: number, kind: 'float' | 'int'): number[] {
  const T = c.num_train_timesteps;
  if (c.timestep_spacing === 'linspace') {
    // Euler: np.linspace(0, T-1, n, dtype=float32)[::-1]; DDIM: np.linspace(0, T-1, n).round()[::-1].astype(int64)
    const v = linspace(0, T - 1, steps);
    return v.reverse().map((x) => (kind === 'int' ? roundHalfEven(x) : Math.fround(x)));
  }
  if (c.timestep_spacing === 'leading') {
    const ratio = Math.floor(T / steps);
    return Array.from({ length: steps }, (_, i) => (steps - 1 - i) * ratio + c.steps_offset);
  }
  // trailing: np.round(np.arange(T, 0, -T/n)) - 1; arange's length is ceil(T / (T/n)).
  const ratio = T / steps;
  const n = Math.ceil(T / ratio);
  return Array.from({ length: n }, (_, i) => roundHalfEven(T - i * ratio) - 1);
}

/** np.interp(x, arange(len(ys)), ys) for x inside [0, len-1], as Euler's sigmas are interpolated. */
function interp(x: number, ys: ArrayLike<number>): number {
  if (x <= 0) return ys[0]!;
  if (x >= ys.length - 1) return ys[ys.length - 1]!;
  const lo = Math.floor(x);
  return ys[lo]! + (ys[lo + 1]! - ys[lo]!) * (x - lo);
}

/** EulerDiscreteScheduler._sigma_to_t: the (fractional) timestep of a sigma, by log-sigma interpolation. */
function sigmaToT(sigma: number, logSigmas: Float64Array): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  // low_idx: the last index whose log sigma is ≤ logSigma (0 if none), at most len-2.
  let low = 0;
  for (let i = 0; i < logSigmas.length; i++) if (logSigma - logSigmas[i]! >= 0) low = i;
  low = Math.min(low, logSigmas.length - 2);
  const w = Math.min(1, Math.max(0, (logSigmas[low]! - logSigma) / (logSigmas[low]! - logSigmas[low + 1]!)));
  return (1 - w) * low + w * (low + 1);
}

/** The sigmas of the training schedule, ((1 - ᾱ) / ᾱ)^½, as float32. */
function trainSigmas(ac: Float64Array): Float64Array {
  return ac.map((a) => Math.fround(Math.sqrt(Math.fround((1 - a) / a))));
}

/**
 * Euler's update, x + (x − x0)/σ · (σ_to − σ), is linear in x and the model output for every
 * prediction type, so it is applied as x·cx + out·co with the coefficients worked out once per step:
 *   epsilon       x0 = x − σ·out                     → (x − x0)/σ = out
 *   v_prediction  x0 = out·(−σ/√(σ²+1)) + x/(σ²+1)   → (x − x0)/σ = x·(1 − 1/(σ²+1))/σ + out/√(σ²+1)
 *   sample        x0 = out                           → (x − x0)/σ = (x − out)/σ
 */
export function eulerCoefficients(prediction: SchedulerConfig['prediction_type'], sigma: number, dt: number): { cx: number; co: number } {
  if (prediction === 'epsilon') return { cx: 1, co: dt };
  if (prediction === 'v_prediction') return { cx: 1 + (dt * (1 - 1 / (sigma * sigma + 1))) / sigma, co: dt / Math.sqrt(sigma * sigma + 1) };
  return { cx: 1 + dt / sigma, co: -dt / sigma };
}

function euler(name: 'euler' | 'euler_a', c: SchedulerConfig, steps: number): Scheduler {
  const ac = alphasCumprod(c);
  const train = trainSigmas(ac);
  let timesteps = spacedTimesteps(c, steps, 'float');
  let sigmas = timesteps.map((t) => interp(t, train));
  if (name === 'euler' && c.use_karras_sigmas) {
    // _convert_to_karras (Karras et al. 2022, rho 7) between the schedule's own extremes, unless configured.
    const lo = c.sigma_min ?? sigmas[sigmas.length - 1]!;
    const hi = c.sigma_max ?? sigmas[0]!;
    const rho = 7;
    sigmas = sigmas.map((_, i) => {
      const ramp = steps === 1 ? 0 : i / (steps - 1);
      return (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho;
    });
    const logSigmas = train.map((s) => Math.fround(Math.log(s)));
    timesteps = sigmas.map((s) => Math.fround(sigmaToT(s, logSigmas)));
  }
  const last = name === 'euler' && c.final_sigmas_type === 'sigma_min' ? Math.sqrt((1 - ac[0]!) / ac[0]!) : 0;
  const all = [...sigmas, last].map((s) => Math.fround(s));
  if (name === 'euler' && c.timestep_type === 'continuous' && c.prediction_type === 'v_prediction') {
    timesteps = all.slice(0, -1).map((s) => Math.fround(0.25 * Math.log(s)));
  }
  const max = Math.max(...all);
  const spaced = c.timestep_spacing === 'linspace' || c.timestep_spacing === 'trailing';
  return {
    name,
    timesteps,
    sigmas: all,
    initNoiseSigma: spaced ? max : Math.sqrt(max * max + 1),
    inputScale: (i) => 1 / Math.sqrt(all[i]! ** 2 + 1),
    drawsAt: () => name === 'euler_a',
    step(i, out, x, draw) {
      const sigma = all[i]!;
      const next = all[i + 1]!;
      if (name === 'euler') {
        const { cx, co } = eulerCoefficients(c.prediction_type, sigma, next - sigma);
        for (let k = 0; k < x.length; k++) x[k] = x[k]! * cx + out[k]! * co;
        return;
      }
      // Ancestral: down to σ_down deterministically, then fresh noise of σ_up. diffusers draws the
      // noise on every step, even the last where σ_up is 0, so the draws stay in step with it.
      const up = Math.sqrt((next * next * (sigma * sigma - next * next)) / (sigma * sigma));
      const down = Math.sqrt(next * next - up * up);
      const { cx, co } = eulerCoefficients(c.prediction_type, sigma, down - sigma);
      const noise = draw();
      for (let k = 0; k < x.length; k++) x[k] = x[k]! * cx + out[k]! * co + noise[k]! * up;
    },
    addNoise(x0, noise, i) {
      const s = all[i]!;
      for (let k = 0; k < x0.length; k++) x0[k] = x0[k]! + noise[k]! * s;
    },
  };
}

/**
 * x0 from the model output for the alpha-parameterised schedulers (DDIM, LCM), as a·x + b·out
 * (then clipped if the config says so): epsilon (x − √(1−ᾱ)·out)/√ᾱ, sample out, v √ᾱ·x − √(1−ᾱ)·out.
 */
function x0Coefficients(prediction: SchedulerConfig['prediction_type'], alpha: number): { a: number; b: number } {
  if (prediction === 'epsilon') return { a: 1 / Math.sqrt(alpha), b: -Math.sqrt(1 - alpha) / Math.sqrt(alpha) };
  if (prediction === 'sample') return { a: 0, b: 1 };
  return { a: Math.sqrt(alpha), b: -Math.sqrt(1 - alpha) };
}

/** ε likewise: epsilon out, sample (x − √ᾱ·out)/√(1−ᾱ), v √ᾱ·out + √(1−ᾱ)·x. */
function epsCoefficients(prediction: SchedulerConfig['prediction_type'], alpha: number): { a: number; b: number } {
  if (prediction === 'epsilon') return { a: 0, b: 1 };
  if (prediction === 'sample') return { a: 1 / Math.sqrt(1 - alpha), b: -Math.sqrt(alpha) / Math.sqrt(1 - alpha) };
  return { a: Math.sqrt(1 - alpha), b: Math.sqrt(alpha) };
}

function alphaAddNoise(ac: Float64Array, t: number, x0: Float32Array, noise: Float32Array): void {
  const a = Math.sqrt(ac[t]!);
  const b = Math.sqrt(1 - ac[t]!);
  for (let k = 0; k < x0.length; k++) x0[k] = a * x0[k]! + b * noise[k]!;
}

function ddim(c: SchedulerConfig, steps: number): Scheduler {
  const ac = alphasCumprod(c);
  const final = c.set_alpha_to_one ? 1 : ac[0]!;
  const timesteps = spacedTimesteps(c, steps, 'int');
  return {
    name: 'ddim',
    timesteps,
    sigmas: [],
    initNoiseSigma: 1,
    inputScale: () => 1,
    // eta 0, as diffusers' pipelines use it: deterministic
    drawsAt: () => false,
    step(i, out, x) {
      const t = timesteps[i]!;
      // diffusers steps back by T // n whatever the spacing, not to the next timestep of the schedule.
      const prev = t - Math.floor(c.num_train_timesteps / steps);
      const a = ac[t]!;
      const ap = prev >= 0 ? ac[prev]! : final;
      const x0c = x0Coefficients(c.prediction_type, a);
      // ε from the unclipped prediction (use_clipped_model_output is false in the pipelines).
      const ec = epsCoefficients(c.prediction_type, a);
      const [sap, s1ap, clip, range] = [Math.sqrt(ap), Math.sqrt(1 - ap), c.clip_sample, c.clip_sample_range];
      for (let k = 0; k < x.length; k++) {
        let x0 = x0c.a * x[k]! + x0c.b * out[k]!;
        if (clip) x0 = Math.min(range, Math.max(-range, x0));
        x[k] = sap * x0 + s1ap * (ec.a * x[k]! + ec.b * out[k]!);
      }
    },
    addNoise: (x0, noise, i) => alphaAddNoise(ac, timesteps[i]!, x0, noise),
  };
}

function lcm(c: SchedulerConfig, steps: number, strength: number): Scheduler {
  const ac = alphasCumprod(c);
  const final = c.set_alpha_to_one ? 1 : ac[0]!;
  // set_timesteps: the distillation schedule (original_inference_steps, cut by strength), then n of it, evenly.
  const k = Math.floor(c.num_train_timesteps / c.original_inference_steps);
  const origin = Array.from({ length: Math.floor(c.original_inference_steps * strength) }, (_, i) => (i + 1) * k - 1).reverse();
  // np.linspace(0, len, num=n, endpoint=False), floored: i · (len / n), as NumPy multiplies.
  const timesteps = Array.from({ length: steps }, (_, i) => origin[Math.floor(i * (origin.length / steps))]!);
  return {
    name: 'lcm',
    timesteps,
    sigmas: [],
    initNoiseSigma: 1,
    inputScale: () => 1,
    drawsAt: (i) => i !== steps - 1,
    step(i, out, x, draw) {
      const t = timesteps[i]!;
      const prev = i + 1 < timesteps.length ? timesteps[i + 1]! : t;
      const a = ac[t]!;
      const ap = prev >= 0 ? ac[prev]! : final;
      // get_scalings_for_boundary_condition_discrete, sigma_data 0.5
      const scaled = t * c.timestep_scaling;
      const cSkip = 0.25 / (scaled * scaled + 0.25);
      const cOut = scaled / Math.sqrt(scaled * scaled + 0.25);
      const lastStep = i === steps - 1;
      const noise = lastStep ? null : draw();
      const x0c = x0Coefficients(c.prediction_type, a);
      const [sap, s1ap, clip, range] = [Math.sqrt(ap), Math.sqrt(1 - ap), c.clip_sample, c.clip_sample_range];
      for (let j = 0; j < x.length; j++) {
        let x0 = x0c.a * x[j]! + x0c.b * out[j]!;
        if (clip) x0 = Math.min(range, Math.max(-range, x0));
        const denoised = cOut * x0 + cSkip * x[j]!;
        x[j] = noise ? sap * denoised + s1ap * noise[j]! : denoised;
      }
    },
    addNoise: (x0, noise, i) => alphaAddNoise(ac, timesteps[i]!, x0, noise),
  };
}

/** Why `steps` cannot run with this scheduler and config, or null. */
export function stepsProblem(name: SchedulerName, c: SchedulerConfig, steps: number, strength: number): string | null {
  if (steps > c.num_train_timesteps) return `at most ${c.num_train_timesteps} steps (the scheduler's num_train_timesteps)`;
  if (name === 'lcm') {
    const origin = Math.floor(c.original_inference_steps * strength);
    if (steps > origin)
      return `at most ${origin} steps for lcm (original_inference_steps ${c.original_inference_steps}${strength < 1 ? ` × strength ${strength}` : ''})`;
  }
  return null;
}

export function makeScheduler(name: SchedulerName, c: SchedulerConfig, steps: number, strength = 1): Scheduler {
  if (name === 'ddim') return ddim(c, steps);
  if (name === 'lcm') return lcm(c, steps, strength);
  return euler(name, c, steps);
}

/**
 * The first step an image-to-image run takes (the pipelines' get_timesteps): strength 1 runs all
 * steps from pure noise, strength 0.3 the last 30% of them from the noised image.
 */
export function beginIndex(steps: number, strength: number): number {
  const init = Math.min(Math.floor(steps * strength), steps);
  return Math.max(steps - init, 0);
}
