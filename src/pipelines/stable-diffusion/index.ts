// The stable-diffusion pipeline: text (and optionally an image) to an image, with a diffusers /
// optimum ONNX export. The daemon expands the step's export folder into its graphs and files
// (export-layout.ts); here they arrive as sessions and texts by role.
import type * as ort from 'onnxruntime-node';
import { DwError } from '../../protocol/errors.js';
import type { Pipeline, PipelineContext, RawImage } from '../types.js';
import { imageArg, resizeImage } from '../../media/image.js';
import { OWNER, parseArgs, type SdArgs } from './args.js';
import { ASSETS } from './export-layout.js';
import { noiseAhead, noiseHere } from './noise-ahead.js';
import { schedulerConfig, schedulerOfClass, SCHEDULER_CLASSES, type SchedulerName } from './scheduler-config.js';
import { beginIndex, makeScheduler, stepsProblem } from './schedulers.js';
import { ClipTokenizer } from './tokenizer.js';
import { encodePrompts } from './text-encoder.js';
import { unetCall, unetSignature, type UnetSignature } from './unet.js';
import { decode, encode } from './vae.js';
import { denoise } from './denoise.js';

export const ROLES: Pipeline['roles'] = [
  { name: 'export', kind: 'folder', required: false },
  { name: 'text_encoder', kind: 'onnx', required: false },
  { name: 'unet', kind: 'onnx', required: false },
  { name: 'vae_decoder', kind: 'onnx', required: false },
  { name: 'vae_encoder', kind: 'onnx', required: false },
  { name: 'tokenizer', kind: 'folder', required: false },
  { name: 'scheduler', kind: 'folder', required: false },
];

/** diffusers' default for SD 1.x/2.x VAEs, used when vae_decoder/config.json does not say. */
const DEFAULT_SCALING = 0.18215;

export interface SdResult {
  image: RawImage;
  seed: number;
  steps: number;
  scheduler: SchedulerName;
  guidance_scale: number;
  width: number;
  height: number;
}

const badArg = (message: string, argument: string) => new DwError('DW_ERR_BAD_ARGUMENT', `${OWNER}: ${message}`, { argument });

function json(text: string, file: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // below
  }
  throw new Error(`${file} is not a JSON object`);
}

/** The image size: as asked, else the UNet's fixed size, else the input image's (img2img), else 512; checked against the UNet. */
function imageSize(a: SdArgs, sig: UnetSignature, input: RawImage | null): { width: number; height: number } {
  const fromUnet = (n: number | undefined) => (n === undefined ? undefined : 8 * n);
  const down8 = (n: number) => Math.max(8, n - (n % 8));
  const width = a.width ?? fromUnet(sig.width) ?? (input ? down8(input.width) : 512);
  const height = a.height ?? fromUnet(sig.height) ?? (input ? down8(input.height) : 512);
  for (const [arg, v, lat] of [
    ['width', width, sig.width],
    ['height', height, sig.height],
  ] as const) {
    if (lat !== undefined && v !== 8 * lat) {
      const allowed = `${fromUnet(sig.width) ?? 'any multiple of 8'}x${fromUnet(sig.height) ?? 'any multiple of 8'}`;
      throw badArg(
        `"${arg}" is ${v}, but this UNet takes only ${8 * lat} (its "sample" is [${sig.sample.dims.join(', ')}]); allowed size: ${allowed}`,
        arg,
      );
    }
  }
  return { width, height };
}

async function generate(args: Record<string, unknown>, ctx: PipelineContext): Promise<SdResult> {
  const a = parseArgs(args);
  const ortm = ctx.ort as typeof ort;
  const text = (role: string) => (ctx.has(role) ? ctx.text(role) : Promise.resolve(undefined));
  const [vocab, merges, tokConfig, specialTokens, schedText, vaeText] = await Promise.all([
    ctx.text(ASSETS.vocab),
    ctx.text(ASSETS.merges),
    text(ASSETS.tokenizerConfig),
    text(ASSETS.specialTokens),
    ctx.text(ASSETS.scheduler),
    text(ASSETS.vaeConfig),
  ]);
  const rawScheduler = json(schedText, ASSETS.scheduler);
  const className = rawScheduler._class_name;
  const name = a.scheduler ?? schedulerOfClass(className);
  if (!name) {
    const known = Object.entries(SCHEDULER_CLASSES)
      .map(([n, c]) => `"${n}" (${c})`)
      .join(', ');
    throw badArg(
      `the export's scheduler is ${JSON.stringify(className)}, which dw does not implement; give "scheduler": one of ${known}`,
      'scheduler',
    );
  }
  const config = schedulerConfig(name, rawScheduler);
  const strength = a.image === undefined ? 1 : a.strength;
  const problem = stepsProblem(name, config, a.steps, strength);
  if (problem) throw badArg(`"steps" is ${a.steps}: the ${name} scheduler takes ${problem}`, 'steps');
  const begin = a.image === undefined ? 0 : beginIndex(a.steps, strength);
  if (begin >= a.steps) throw badArg(`"strength" ${strength} with ${a.steps} steps runs no step; raise either`, 'strength');
  const scaling = (() => {
    const v = vaeText === undefined ? undefined : json(vaeText, ASSETS.vaeConfig).scaling_factor;
    return typeof v === 'number' && v > 0 ? v : DEFAULT_SCALING;
  })();

  const [textEncoder, unet, vaeDecoder] = await Promise.all([ctx.session('text_encoder'), ctx.session('unet'), ctx.session('vae_decoder')]);
  const sig = unetSignature(unet);
  const input = a.image === undefined ? null : await imageArg(a.image, 'rgb', OWNER);
  const { width, height } = imageSize(a, sig, input);
  const latent = { h: height / 8, w: width / 8 };
  if (ctx.signal.aborted) throw ctx.signal.reason;

  const tokenizer = new ClipTokenizer({ vocab, merges, config: tokConfig, specialTokens });
  // [uncond, cond], as diffusers concatenates them for guidance
  const ehs = await encodePrompts(ortm, textEncoder, tokenizer, a.guidance === null ? [a.prompt] : [a.negative_prompt, a.prompt]);
  const scheduler = makeScheduler(name, config, a.steps, strength);
  const n = 4 * latent.h * latent.w;
  // Schedulers that add noise on each step have it drawn ahead, beside the UNet; the others draw once or twice.
  const noise = scheduler.drawsAt(begin) ? noiseAhead(a.seed, n) : noiseHere(a.seed, n);
  try {
    let latents: Float32Array;
    if (input) {
      const sized = input.width === width && input.height === height ? input : await resizeImage(input, { width, height }, 'fill');
      latents = await encode(ortm, await ctx.session('vae_encoder'), sized, scaling, noise);
      scheduler.addNoise(latents, await noise.take(), begin);
    } else {
      latents = await noise.take();
      for (let i = 0; i < n; i++) latents[i] = latents[i]! * scheduler.initNoiseSigma;
    }
    const call = unetCall(ortm, unet, sig, ehs, a.guidance, latent);
    await denoise({
      scheduler,
      unet: call,
      latents,
      begin,
      signal: ctx.signal,
      noise,
      onStep: (done, total, ms) => ctx.progress(done, total, `steps, ${Math.round(ms)} ms/step`),
    });
    if (ctx.signal.aborted) throw ctx.signal.reason;
    const image = await decode(ortm, vaeDecoder, latents, scaling, latent.h, latent.w);
    return { image, seed: a.seed, steps: a.steps, scheduler: name, guidance_scale: a.guidance_scale, width, height };
  } finally {
    noise.close();
  }
}

export const stableDiffusion: Pipeline = {
  type: 'stable-diffusion',
  roles: ROLES,
  async run(args, ctx) {
    try {
      return await generate(args, ctx);
    } catch (err) {
      if (err instanceof DwError || (ctx.signal.aborted && err === ctx.signal.reason)) throw err;
      // onnxruntime failures, exports whose graphs or files do not fit, configs dw cannot use.
      throw new DwError('DW_ERR_RUN_FAILED', `${OWNER}: ${err instanceof Error ? err.message : String(err)}`);
    }
  },
};
