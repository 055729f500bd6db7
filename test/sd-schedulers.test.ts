// The four schedulers against diffusers. Timesteps, sigmas and init_noise_sigma are compared with
// test/fixtures/diffusers-schedules.json, which test/fixtures/diffusers-schedules.py computed by
// transcribing diffusers' set_timesteps (scheduling_euler_discrete.py, scheduling_euler_ancestral_
// discrete.py, scheduling_ddim.py, scheduling_lcm.py) into NumPy; single steps are checked against
// numbers worked out by hand from each class's step().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  alphasCumprod,
  schedulerConfig,
  schedulerOfClass,
  type SchedulerName,
} from '../src/pipelines/stable-diffusion/scheduler-config.js';
import { beginIndex, makeScheduler, roundHalfEven, stepsProblem } from '../src/pipelines/stable-diffusion/schedulers.js';
import { ROOT } from './helpers/env.js';

interface Case {
  scheduler: SchedulerName;
  config: Record<string, unknown>;
  steps: number;
  strength?: number;
  timesteps: number[];
  sigmas?: number[];
  init_noise_sigma?: number;
}
const REF = JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'diffusers-schedules.json'), 'utf8')) as {
  alphas_cumprod_at: number[];
  alphas_cumprod: Record<string, number[]>;
  cases: Case[];
};
/** diffusers' alphas_cumprod[t] of SD's scaled_linear schedule, for the t the fixture has. */
const AC = (t: number) => REF.alphas_cumprod.scaled_linear![REF.alphas_cumprod_at.indexOf(t)]!;

const close = (got: number, want: number, rel: number, what: string) =>
  assert.ok(Math.abs(got - want) <= rel * Math.max(1, Math.abs(want)), `${what}: ${got} vs ${want}`);
const SD = { num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', steps_offset: 1 };

test('alphas_cumprod of the linear and scaled_linear beta schedules match diffusers', () => {
  for (const [schedule, want] of Object.entries(REF.alphas_cumprod)) {
    const c = schedulerConfig('ddim', schedule === 'linear' ? {} : SD);
    const ac = alphasCumprod(c);
    REF.alphas_cumprod_at.forEach((t, i) => close(ac[t]!, want[i]!, 2e-6, `${schedule} alphas_cumprod[${t}]`));
  }
});

test(`timesteps, sigmas and init_noise_sigma of every scheduler and spacing match diffusers' set_timesteps (${REF.cases.length} cases)`, () => {
  for (const k of REF.cases) {
    const what = `${k.scheduler} ${JSON.stringify(k.config)} steps ${k.steps}${k.strength ? ` strength ${k.strength}` : ''}`;
    const s = makeScheduler(k.scheduler, schedulerConfig(k.scheduler, k.config), k.steps, k.strength ?? 1);
    assert.equal(s.timesteps.length, k.timesteps.length, what);
    // Integer schedules are exact; Euler's float timesteps agree to float32 precision.
    k.timesteps.forEach((t, i) =>
      k.scheduler === 'ddim' || k.scheduler === 'lcm'
        ? assert.equal(s.timesteps[i], t, `${what} t[${i}]`)
        : close(s.timesteps[i]!, t, 1e-6, `${what} t[${i}]`),
    );
    if (k.sigmas) {
      assert.equal(s.sigmas.length, k.sigmas.length, what);
      k.sigmas.forEach((sg, i) => close(s.sigmas[i]!, sg, 1e-5, `${what} sigma[${i}]`));
      close(s.initNoiseSigma, k.init_noise_sigma!, 1e-5, `${what} init_noise_sigma`);
    } else assert.equal(s.initNoiseSigma, 1, what);
  }
});

test('np.round semantics: halves go to the even neighbour (trailing spacing of 16 steps has 937.5 and 812.5)', () => {
  assert.deepEqual([0.5, 1.5, 2.5, 937.5, 812.5, -0.5, 3.2].map(roundHalfEven), [0, 2, 2, 938, 812, -0, 3]);
});

test('one Euler step, by hand: epsilon, v_prediction and sample predictions', () => {
  const c = (p: string) => schedulerConfig('euler', { ...SD, timestep_spacing: 'trailing', prediction_type: p });
  const s = makeScheduler('euler', c('epsilon'), 2);
  const [s0, s1] = s.sigmas as [number, number, number];
  // epsilon: x0 = x - σ·ε, so x' = x + ε·(σ1 - σ0)
  const x = Float32Array.of(2, -1);
  s.step(0, Float32Array.of(0.5, 0.25), x, () => assert.fail('euler draws no noise'));
  close(x[0]!, 2 + 0.5 * (s1 - s0), 1e-6, 'epsilon x[0]');
  close(x[1]!, -1 + 0.25 * (s1 - s0), 1e-6, 'epsilon x[1]');
  // v_prediction at σ: x0 = v·(-σ/√(σ²+1)) + x/(σ²+1)
  const v = makeScheduler('euler', c('v_prediction'), 2);
  const xv = Float32Array.of(2);
  v.step(0, Float32Array.of(0.5), xv, () => new Float32Array(1));
  const x0 = 0.5 * (-s0 / Math.sqrt(s0 * s0 + 1)) + 2 / (s0 * s0 + 1);
  close(xv[0]!, 2 + ((2 - x0) / s0) * (s1 - s0), 1e-6, 'v_prediction');
  // sample: the last step (σ → 0) lands exactly on the prediction
  const p = makeScheduler('euler', c('sample'), 2);
  const xs = Float32Array.of(5);
  p.step(1, Float32Array.of(0.125), xs, () => new Float32Array(1));
  close(xs[0]!, 0.125, 1e-7, 'sample at the last step');
  close(s.inputScale(0), 1 / Math.sqrt(s0 * s0 + 1), 1e-12, 'scale_model_input');
});

test('one ancestral step, by hand: down to σ_down, then noise of σ_up; noise is drawn on the last step too', () => {
  const s = makeScheduler('euler_a', schedulerConfig('euler_a', { ...SD, timestep_spacing: 'trailing' }), 2);
  const [a, b] = s.sigmas as [number, number];
  const up = Math.sqrt((b * b * (a * a - b * b)) / (a * a));
  const down = Math.sqrt(b * b - up * up);
  const x = Float32Array.of(3);
  let draws = 0;
  const draw = () => (draws++, Float32Array.of(0.5));
  s.step(0, Float32Array.of(0.25), x, draw);
  close(x[0]!, 3 + 0.25 * (down - a) + 0.5 * up, 1e-6, 'ancestral x');
  s.step(1, Float32Array.of(0.25), x, draw);
  assert.equal(draws, 2, 'diffusers draws fresh noise on every step');
});

test('one DDIM step, by hand (eta 0): to the timestep T//n earlier, then to the final alpha (set_alpha_to_one)', () => {
  const [a0, a499, a999] = [AC(0), AC(499), AC(999)];
  for (const one of [true, false]) {
    const c = schedulerConfig('ddim', { ...SD, timestep_spacing: 'trailing', clip_sample: false, set_alpha_to_one: one });
    const s = makeScheduler('ddim', c, 2);
    assert.deepEqual(s.timesteps, [999, 499]);
    const x = Float32Array.of(1.5);
    s.step(0, Float32Array.of(0.2), x, () => assert.fail('no noise at eta 0'));
    let x0 = (1.5 - Math.sqrt(1 - a999) * 0.2) / Math.sqrt(a999);
    let want = Math.sqrt(a499) * x0 + Math.sqrt(1 - a499) * 0.2;
    close(x[0]!, want, 1e-5, 'ddim step 0');
    s.step(1, Float32Array.of(0.2), x, () => assert.fail('no noise at eta 0'));
    x0 = (want - Math.sqrt(1 - a499) * 0.2) / Math.sqrt(a499);
    const final = one ? 1 : a0;
    want = Math.sqrt(final) * x0 + Math.sqrt(1 - final) * 0.2;
    close(x[0]!, want, 1e-5, `ddim last step, set_alpha_to_one ${one}`);
  }
  // clip_sample (DDIM's default) clamps x0 to ±clip_sample_range before the update
  const clipped = makeScheduler('ddim', schedulerConfig('ddim', { ...SD, timestep_spacing: 'trailing', prediction_type: 'sample' }), 2);
  const x = Float32Array.of(0);
  clipped.step(1, Float32Array.of(4), x, () => new Float32Array(1));
  const eps = (0 - Math.sqrt(a499) * 4) / Math.sqrt(1 - a499);
  close(x[0]!, 1 * 1 + 0 * eps, 1e-6, 'x0 clipped to 1, final alpha 1');
  // v_prediction: x0 = √ᾱ·x − √(1−ᾱ)·v, ε = √ᾱ·v + √(1−ᾱ)·x
  const v = makeScheduler(
    'ddim',
    schedulerConfig('ddim', { ...SD, timestep_spacing: 'trailing', prediction_type: 'v_prediction', clip_sample: false }),
    2,
  );
  const xv = Float32Array.of(0.5);
  v.step(0, Float32Array.of(-0.25), xv, () => new Float32Array(1));
  const [v0, ve] = [Math.sqrt(a999) * 0.5 + Math.sqrt(1 - a999) * 0.25, Math.sqrt(a999) * -0.25 + Math.sqrt(1 - a999) * 0.5];
  close(xv[0]!, Math.sqrt(a499) * v0 + Math.sqrt(1 - a499) * ve, 1e-5, 'ddim v_prediction');
  // linspace spacing of 3 steps is [999, 500, 0], yet the first step goes to 999 - 1000//3 = 666, as diffusers does
  const lin = makeScheduler('ddim', schedulerConfig('ddim', { ...SD, timestep_spacing: 'linspace', clip_sample: false }), 3);
  assert.deepEqual(lin.timesteps, [999, 500, 0]);
  const y = Float32Array.of(1.5);
  lin.step(0, Float32Array.of(0.2), y, () => new Float32Array(1));
  const y0 = (1.5 - Math.sqrt(1 - a999) * 0.2) / Math.sqrt(a999);
  close(y[0]!, Math.sqrt(AC(666)) * y0 + Math.sqrt(1 - AC(666)) * 0.2, 1e-5, 'ddim steps back by T // n');
});

test('one LCM step, by hand: boundary-condition scalings, fresh noise except on the last step', () => {
  const c = schedulerConfig('lcm', {});
  const s = makeScheduler('lcm', c, 1);
  assert.deepEqual(s.timesteps, [999]);
  const a = AC(999);
  const x = Float32Array.of(0.75);
  s.step(0, Float32Array.of(-0.5), x, () => assert.fail('the last step adds no noise'));
  const scaled = 999 * 10;
  const cSkip = 0.25 / (scaled * scaled + 0.25);
  const cOut = scaled / Math.sqrt(scaled * scaled + 0.25);
  close(x[0]!, cOut * ((0.75 - Math.sqrt(1 - a) * -0.5) / Math.sqrt(a)) + cSkip * 0.75, 1e-5, 'lcm denoised');
  const two = makeScheduler('lcm', c, 2);
  let draws = 0;
  two.step(0, Float32Array.of(0), Float32Array.of(0), () => (draws++, Float32Array.of(1)));
  assert.equal(draws, 1);
});

test("configs: class defaults under the file's keys, as from_config; unsupported settings and bad values are named", () => {
  // DDIM's own default spacing is leading, Euler's linspace; keys a class does not take are ignored.
  assert.equal(schedulerConfig('ddim', {}).timestep_spacing, 'leading');
  assert.equal(schedulerConfig('euler', {}).timestep_spacing, 'linspace');
  assert.equal(schedulerConfig('euler', { set_alpha_to_one: false, timestep_spacing: 'trailing' }).timestep_spacing, 'trailing');
  assert.equal(schedulerConfig('lcm', {}).beta_schedule, 'scaled_linear');
  assert.throws(() => schedulerConfig('ddim', { thresholding: true }), /"thresholding": true is not supported/);
  assert.throws(
    () => schedulerConfig('euler', { beta_schedule: 'squaredcos_cap_v2' }),
    /"beta_schedule" must be one of "linear", "scaled_linear", got "squaredcos_cap_v2"/,
  );
  assert.throws(
    () => schedulerConfig('euler_a', { prediction_type: 'sample' }),
    /euler_a scheduler cannot take "prediction_type": "sample"/,
  );
  assert.throws(() => schedulerConfig('euler', { num_train_timesteps: 1.5 }), /"num_train_timesteps" must be an integer/);
  assert.equal(schedulerOfClass('EulerAncestralDiscreteScheduler'), 'euler_a');
  assert.equal(schedulerOfClass('PNDMScheduler'), undefined);
  assert.match(stepsProblem('lcm', schedulerConfig('lcm', {}), 51, 1)!, /at most 50 steps for lcm/);
  assert.equal(stepsProblem('euler', schedulerConfig('euler', {}), 1000, 1), null);
  assert.deepEqual([beginIndex(20, 1), beginIndex(20, 0.3), beginIndex(4, 0.5)], [0, 14, 2]);
});

test('img2img add_noise: Euler adds σ·noise, DDIM mixes by √ᾱ and √(1-ᾱ)', () => {
  const e = makeScheduler('euler', schedulerConfig('euler', SD), 4);
  const x = Float32Array.of(1);
  e.addNoise(x, Float32Array.of(2), 1);
  close(x[0]!, 1 + 2 * e.sigmas[1]!, 1e-6, 'euler add_noise');
  const d = makeScheduler('ddim', schedulerConfig('ddim', { ...SD, timestep_spacing: 'trailing' }), 2);
  const y = Float32Array.of(1);
  d.addNoise(y, Float32Array.of(2), 1);
  const a = AC(499);
  close(y[0]!, Math.sqrt(a) + Math.sqrt(1 - a) * 2, 1e-6, 'ddim add_noise at t 499');
});

test('every scheduler says which steps draw noise, and draws exactly there (the pipeline draws ahead by it)', () => {
  for (const name of ['euler', 'euler_a', 'ddim', 'lcm'] as const) {
    const s = makeScheduler(name, schedulerConfig(name, {}), 6);
    for (let i = 0; i < s.timesteps.length; i++) {
      let drew = false;
      s.step(i, new Float32Array(4), new Float32Array(4), () => ((drew = true), new Float32Array(4)));
      assert.equal(drew, s.drawsAt(i), `${name} step ${i}`);
    }
  }
});
