// Pixels in and tensors out (decoding is media/image.ts): OpenCV-compatible bilinear resizing, CHW normalisation.
import type { RawImage } from '../types.js';

/**
 * The order of the colour channels in the tensors. PaddleOCR reads images with cv2, so its
 * models were trained and are fed BGR; we feed the same to get the accuracy they were tuned for.
 */
export const CHANNEL_ORDER: readonly [number, number, number] = [2, 1, 0];

/**
 * Bilinear resize with cv2.INTER_LINEAR's sampling (pixel centres aligned, edges clamped), so the
 * models see the same pixels as in PaddleOCR. Like OpenCV it does not low-pass when shrinking.
 */
export function resizeBilinear(src: RawImage, width: number, height: number): RawImage {
  const { data, width: sw, height: sh, channels: ch } = src;
  // Sampling at the same size lands on every source pixel centre: the image itself.
  if (width === sw && height === sh) return src;
  const out = new Uint8Array(width * height * ch);
  const sx = sw / width,
    sy = sh / height;
  const x0s = new Int32Array(width),
    x1s = new Int32Array(width),
    fxs = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), sw - 1);
    x0s[x] = Math.floor(fx);
    x1s[x] = Math.min(x0s[x]! + 1, sw - 1);
    fxs[x] = fx - x0s[x]!;
  }
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), sh - 1);
    const y0 = Math.floor(fy),
      y1 = Math.min(y0 + 1, sh - 1),
      wy = fy - y0;
    const r0 = y0 * sw * ch,
      r1 = y1 * sw * ch;
    let o = y * width * ch;
    for (let x = 0; x < width; x++) {
      const a = x0s[x]! * ch,
        b = x1s[x]! * ch,
        wx = fxs[x]!;
      for (let c = 0; c < ch; c++) {
        const top = data[r0 + a + c]! + (data[r0 + b + c]! - data[r0 + a + c]!) * wx;
        const bottom = data[r1 + a + c]! + (data[r1 + b + c]! - data[r1 + a + c]!) * wx;
        out[o++] = Math.round(top + (bottom - top) * wy);
      }
    }
  }
  return { data: out, width, height, channels: ch };
}

export interface Normalisation {
  /** Per tensor channel, applied to value/255. */
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/** PaddleOCR's detector: ImageNet statistics, applied to the channels in the order fed (BGR). */
export const DET_NORM: Normalisation = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
/** Direction classifier and recogniser: (x/255 - 0.5) / 0.5, i.e. to [-1, 1]. */
export const REC_NORM: Normalisation = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };

/**
 * Writes `img` normalised as planar channels into `out`, whose planes are `planeWidth` wide and
 * `planeHeight` tall (at least the image's size), starting at `offset`. Pixels right of the image
 * are left as they are (zero in a fresh buffer): that is PaddleOCR's padding of recogniser input.
 */
export function writeChw(
  img: RawImage,
  norm: Normalisation,
  out: Float32Array,
  offset = 0,
  planeWidth = img.width,
  planeHeight = img.height,
): void {
  const { data, width, height, channels } = img;
  const plane = planeWidth * planeHeight;
  for (let c = 0; c < 3; c++) {
    const src = CHANNEL_ORDER[c]!;
    const scale = 1 / (255 * norm.std[c]!);
    const shift = norm.mean[c]! / norm.std[c]!;
    const base = offset + c * plane;
    for (let y = 0; y < height; y++) {
      let i = y * width * channels + src;
      let o = base + y * planeWidth;
      for (let x = 0; x < width; x++, i += channels) out[o++] = data[i]! * scale - shift;
    }
  }
}

/** Rotates an image by 180 degrees (a line the classifier found upside down). */
export function rotate180(img: RawImage): RawImage {
  const { data, width, height, channels: ch } = img;
  const out = new Uint8Array(data.length);
  const n = width * height;
  for (let p = 0; p < n; p++) {
    const q = (n - 1 - p) * ch;
    for (let c = 0; c < ch; c++) out[p * ch + c] = data[q + c]!;
  }
  return { data: out, width, height, channels: ch };
}
