// A scheduler's settings as diffusers builds them: the class's own defaults (the __init__ signatures
// of diffusers' schedulers/scheduling_*.py), overlaid by what the export's scheduler_config.json
// says, as `SchedulerClass.from_config(config)` does; plus the noise schedule they define.
//
// Numbers follow diffusers' dtypes where they matter: betas and alphas_cumprod are float32 tensors
// there, so they are rounded to float32 here (Math.fround) after each operation diffusers does in
// float32; torch accumulates a float32 cumprod in double on the CPU, as this does.

export type SchedulerName = 'euler' | 'euler_a' | 'ddim' | 'lcm';

export const SCHEDULER_CLASSES: Record<SchedulerName, string> = {
  euler: 'EulerDiscreteScheduler',
  euler_a: 'EulerAncestralDiscreteScheduler',
  ddim: 'DDIMScheduler',
  lcm: 'LCMScheduler',
};

export type Spacing = 'leading' | 'trailing' | 'linspace';
export type Prediction = 'epsilon' | 'v_prediction' | 'sample';

export interface SchedulerConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: 'linear' | 'scaled_linear';
  trained_betas: number[] | null;
  prediction_type: Prediction;
  timestep_spacing: Spacing;
  steps_offset: number;
  /** DDIM, LCM: the "previous" alpha of the last step is 1 (true) or alphas_cumprod[0]. */
  set_alpha_to_one: boolean;
  clip_sample: boolean;
  clip_sample_range: number;
  /** Euler: "continuous" with v_prediction gives the UNet 0.25·log(sigma) as its timestep. */
  timestep_type: 'discrete' | 'continuous';
  use_karras_sigmas: boolean;
  sigma_min: number | null;
  sigma_max: number | null;
  final_sigmas_type: 'zero' | 'sigma_min';
  /** LCM */
  original_inference_steps: number;
  timestep_scaling: number;
}

/** Each class's __init__ defaults (diffusers' scheduling_euler_discrete.py, …_euler_ancestral_discrete.py, …_ddim.py, …_lcm.py). */
const COMMON = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  prediction_type: 'epsilon',
  steps_offset: 0,
} as const;
const DEFAULTS: Record<SchedulerName, Partial<SchedulerConfig>> = {
  euler: {
    ...COMMON,
    timestep_spacing: 'linspace',
    timestep_type: 'discrete',
    use_karras_sigmas: false,
    sigma_min: null,
    sigma_max: null,
    final_sigmas_type: 'zero',
  },
  euler_a: { ...COMMON, timestep_spacing: 'linspace' },
  ddim: { ...COMMON, timestep_spacing: 'leading', set_alpha_to_one: true, clip_sample: true, clip_sample_range: 1 },
  lcm: {
    ...COMMON,
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    timestep_spacing: 'leading',
    set_alpha_to_one: true,
    clip_sample: false,
    clip_sample_range: 1,
    original_inference_steps: 50,
    timestep_scaling: 10,
  },
};

/** Settings a class has that dw does not implement, and the value that is harmless. */
const UNSUPPORTED: Array<[string, unknown]> = [
  ['rescale_betas_zero_snr', false],
  ['thresholding', false],
  ['use_exponential_sigmas', false],
  ['use_beta_sigmas', false],
  ['interpolation_type', 'linear'],
];

const OWNER = 'scheduler/scheduler_config.json';

function bad(key: string, want: string, got: unknown): Error {
  return new Error(`${OWNER}: "${key}" must be ${want}, got ${JSON.stringify(got)}`);
}

/** The settings `name` runs with, from the export's scheduler_config.json (already parsed). Throws Error with the key at fault. */
export function schedulerConfig(name: SchedulerName, raw: Record<string, unknown>): SchedulerConfig {
  const own = DEFAULTS[name];
  const c: Record<string, unknown> = { ...own };
  // Only the keys this class takes, as from_config does: DDIM's set_alpha_to_one means nothing to Euler.
  for (const key of Object.keys(own)) if (raw[key] !== undefined && raw[key] !== null) c[key] = raw[key];
  for (const [key, fine] of UNSUPPORTED) {
    if (raw[key] !== undefined && raw[key] !== null && raw[key] !== fine)
      throw new Error(`${OWNER}: "${key}": ${JSON.stringify(raw[key])} is not supported by dw (only ${JSON.stringify(fine)})`);
  }
  const int = (k: string, min: number) => {
    if (c[k] !== undefined && !(Number.isInteger(c[k]) && (c[k] as number) >= min)) throw bad(k, `an integer ≥ ${min}`, c[k]);
  };
  const num = (k: string) => {
    if (c[k] !== undefined && c[k] !== null && !(typeof c[k] === 'number' && Number.isFinite(c[k]))) throw bad(k, 'a number', c[k]);
  };
  const oneOf = (k: string, ...values: unknown[]) => {
    if (c[k] !== undefined && !values.includes(c[k])) throw bad(k, `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`, c[k]);
  };
  int('num_train_timesteps', 2);
  int('steps_offset', 0);
  int('original_inference_steps', 1);
  ['beta_start', 'beta_end', 'clip_sample_range', 'timestep_scaling', 'sigma_min', 'sigma_max'].forEach(num);
  oneOf('beta_schedule', 'linear', 'scaled_linear');
  oneOf('prediction_type', 'epsilon', 'v_prediction', 'sample');
  oneOf('timestep_spacing', 'leading', 'trailing', 'linspace');
  oneOf('timestep_type', 'discrete', 'continuous');
  oneOf('final_sigmas_type', 'zero', 'sigma_min');
  for (const k of ['set_alpha_to_one', 'clip_sample', 'use_karras_sigmas']) oneOf(k, true, false);
  const tb = c.trained_betas;
  if (
    tb !== null &&
    !(Array.isArray(tb) && tb.length === c.num_train_timesteps && tb.every((b) => typeof b === 'number' && b > 0 && b < 1))
  ) {
    throw bad('trained_betas', `null or ${String(c.num_train_timesteps)} numbers between 0 and 1`, tb);
  }
  // diffusers' EulerAncestralDiscreteScheduler.step raises NotImplementedError for it.
  if (name === 'euler_a' && c.prediction_type === 'sample')
    throw new Error(`${OWNER}: the euler_a scheduler cannot take "prediction_type": "sample" (diffusers does not implement it either)`);
  return c as unknown as SchedulerConfig;
}

/** The scheduler a config's _class_name names, or undefined for one dw does not implement. */
export function schedulerOfClass(className: unknown): SchedulerName | undefined {
  return (Object.keys(SCHEDULER_CLASSES) as SchedulerName[]).find((n) => SCHEDULER_CLASSES[n] === className);
}

/** torch.linspace(start, end, n, dtype=float32): float32 values (torch computes its steps in float32 too; 1 ulp apart at most). */
function linspace32(start: number, end: number, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.fround(n === 1 ? start : start + ((end - start) * i) / (n - 1));
  return out;
}

/** alphas_cumprod = cumprod(1 - betas), as each scheduler's __init__ computes it. */
export function alphasCumprod(c: SchedulerConfig): Float64Array {
  const n = c.num_train_timesteps;
  let betas: Float64Array;
  if (c.trained_betas) betas = Float64Array.from(c.trained_betas, (b) => Math.fround(b));
  else if (c.beta_schedule === 'linear') betas = linspace32(c.beta_start, c.beta_end, n);
  else betas = linspace32(Math.sqrt(c.beta_start), Math.sqrt(c.beta_end), n).map((b) => Math.fround(b * b));
  const out = new Float64Array(n);
  let prod = 1;
  for (let i = 0; i < n; i++) {
    prod *= Math.fround(1 - betas[i]!);
    out[i] = Math.fround(prod);
  }
  return out;
}
