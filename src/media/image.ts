// Images as step values: 8-bit interleaved pixels (1 = gray, 3 = RGB, 4 = RGBA), decoded and encoded
// with sharp. Steps pass these between each other inside the runner; only their size reaches a client.
import sharp, { type OutputInfo, type Sharp } from 'sharp';
import { DwError } from '../protocol/errors.js';
import { type ImageFormat, type RawImage } from './image-value.js';
import { readInput } from './read.js';

export { IMAGE_FORMATS, isImage, type ImageFormat, type RawImage } from './image-value.js';

export type ImageMode = 'rgb' | 'rgba' | 'gray';
export const CHANNELS: Record<ImageMode, number> = { gray: 1, rgb: 3, rgba: 4 };

function fromSharp(data: Buffer, info: OutputInfo): RawImage {
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    width: info.width,
    height: info.height,
    channels: info.channels,
  };
}

export function toSharp(img: RawImage): Sharp {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels as 1 | 3 | 4 } });
}

/** Pixels in the given mode; transparency is flattened onto white paper unless kept (rgba). */
async function pixels(input: Sharp, mode: ImageMode): Promise<RawImage> {
  let s = input;
  if (mode !== 'rgba') s = s.flatten({ background: '#ffffff' });
  s = mode === 'gray' ? s.toColourspace('b-w') : s.toColourspace('srgb');
  s = mode === 'rgba' ? s.ensureAlpha() : s.removeAlpha();
  const { data, info } = await s.raw().toBuffer({ resolveWithObject: true });
  return fromSharp(data, info);
}

/** Decodes a PNG, JPEG, WebP, GIF or TIFF file, honouring EXIF orientation as a viewer would. */
export async function readImage(path: string, mode: ImageMode, owner: string): Promise<RawImage> {
  const bytes = await readInput(path, owner, 'image');
  try {
    return await pixels(sharp(bytes).rotate(), mode);
  } catch (err) {
    throw new DwError(
      'DW_ERR_BAD_ARGUMENT',
      `${owner}: ${path} is not a readable image (png, jpeg, webp, gif or tiff): ${(err as Error).message}`,
      { path },
    );
  }
}

/** A path (read now) or an image value from an earlier step, in the wanted mode. */
export async function imageArg(v: string | RawImage, mode: ImageMode, owner: string): Promise<RawImage> {
  if (typeof v === 'string') return readImage(v, mode, owner);
  return v.channels === CHANNELS[mode] ? v : convertImage(v, mode);
}

/** A path (read as RGB) or an image value as it is, alpha or gray kept: for steps that work on any. */
export async function anyImage(v: string | RawImage, owner: string): Promise<RawImage> {
  return typeof v === 'string' ? readImage(v, 'rgb', owner) : v;
}

export function convertImage(img: RawImage, mode: ImageMode): Promise<RawImage> {
  return pixels(toSharp(img), mode);
}

export type Fit = 'fill' | 'contain' | 'cover' | 'inside' | 'outside';

/** Resizes with sharp (lanczos3); `contain` letterboxes onto black. */
export async function resizeImage(img: RawImage, size: { width?: number; height?: number }, fit: Fit): Promise<RawImage> {
  const { data, info } = await toSharp(img)
    .resize({ ...size, fit, background: { r: 0, g: 0, b: 0, alpha: 1 } })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return fromSharp(data, info);
}

export async function encodeImage(img: RawImage, format: ImageFormat, quality?: number): Promise<Buffer> {
  const s = toSharp(img);
  return (
    format === 'png' ? s.png() : format === 'jpeg' ? s.jpeg({ quality: quality ?? 90 }) : s.webp({ quality: quality ?? 90 })
  ).toBuffer();
}
