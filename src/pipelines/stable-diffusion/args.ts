// The stable-diffusion step's arguments (the interface of issue 12), checked before any model runs.
import { randomInt } from 'node:crypto';
import type { RawImage } from '../../media/image.js';
import { type ArgRule, checkArgs, checkRule, image, number, oneOf, text } from '../arguments.js';
import { MAX_SEED } from './noise.js';
import type { SchedulerName } from './scheduler-config.js';

export const OWNER = 'stable-diffusion';

const size = {
  expected: 'a multiple of 8 from 8 to 8192',
  ok: (v: unknown) => Number.isInteger(v) && (v as number) % 8 === 0 && (v as number) >= 8 && (v as number) <= 8192,
  optional: true,
};

export const SD_ARGS = {
  prompt: text,
  negative_prompt: { ...text, default: '' },
  steps: { ...number(1, 1000, { int: true }), default: 20 },
  guidance_scale: { ...number(0, 100), default: 7.5 },
  seed: { ...number(0, MAX_SEED, { int: true }), optional: true },
  width: size,
  height: size,
  scheduler: { ...oneOf('euler', 'euler_a', 'ddim', 'lcm'), optional: true },
  image: { ...image, optional: true },
  strength: { ...number(0, 1, { above: true }), optional: true },
};

export const SD_RULE: ArgRule = (a) =>
  a.strength !== undefined && a.image === undefined ? '"strength" is for image-to-image and needs "image"' : null;

export interface SdArgs {
  prompt: string;
  negative_prompt: string;
  steps: number;
  /** null: no classifier-free guidance (guidance_scale ≤ 1), one UNet pass per step. */
  guidance: number | null;
  guidance_scale: number;
  seed: number;
  width?: number;
  height?: number;
  scheduler?: SchedulerName;
  image?: string | RawImage;
  strength: number;
}

export function parseArgs(args: Record<string, unknown>): SdArgs {
  const a = checkArgs(OWNER, args, SD_ARGS);
  checkRule(OWNER, a, SD_RULE);
  const g = a.guidance_scale as number;
  return {
    prompt: a.prompt as string,
    negative_prompt: a.negative_prompt as string,
    steps: a.steps as number,
    guidance: g > 1 ? g : null,
    guidance_scale: g,
    // No seed: a random one, reported in the result so the image can be made again.
    seed: (a.seed as number | undefined) ?? randomInt(0, MAX_SEED + 1),
    ...(a.width !== undefined ? { width: a.width as number } : {}),
    ...(a.height !== undefined ? { height: a.height as number } : {}),
    ...(a.scheduler !== undefined ? { scheduler: a.scheduler as SchedulerName } : {}),
    ...(a.image !== undefined ? { image: a.image as string | RawImage } : {}),
    // diffusers' img2img default
    strength: (a.strength as number | undefined) ?? 0.8,
  };
}
