// Packs text-line crops into the fixed-height, zero-padded batches the cls and rec models take.
import * as ort from 'onnxruntime-node';
import type { RawImage } from '../types.js';
import { REC_NORM, resizeBilinear, writeChw } from './image.js';

/**
 * A [n, 3, height, width] tensor of the crops, each resized to `height` keeping its aspect ratio
 * (capped at `width`), normalised to [-1, 1] and padded with zeros on the right (PaddleOCR's
 * resize_norm_img for the classifier and the recogniser).
 */
export function lineBatch(crops: readonly RawImage[], height: number, width: number): ort.Tensor {
  const plane = height * width;
  const data = new Float32Array(crops.length * 3 * plane);
  crops.forEach((crop, i) => {
    const w = Math.min(width, Math.ceil((height * crop.width) / crop.height));
    writeChw(resizeBilinear(crop, w, height), REC_NORM, data, i * 3 * plane, width, height);
  });
  return new ort.Tensor('float32', data, [crops.length, 3, height, width]);
}

/** Indices of `crops` from narrowest to widest, so each batch pads its lines to similar widths. */
export function byAspectRatio(crops: readonly RawImage[]): number[] {
  return crops
    .map((c, i) => ({ i, r: c.width / c.height }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((e) => e.i);
}
