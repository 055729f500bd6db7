// Text detection: resize the page for the DB model, run it, and turn its map into boxes.
import * as ort from 'onnxruntime-node';
import type { RawImage } from '../types.js';
import { boxesFromProbability, finishBoxes, type DbOptions, type ScoredBox } from './db-postprocess.js';
import { DET_NORM, resizeBilinear, writeChw } from './image.js';
import { outputOf } from './session-io.js';

/**
 * The detector's input size (PaddleOCR's DetResizeForTest, limit_type "max"): the longer side at
 * most `limitSideLen`, then each side rounded to a multiple of 32, which the network's
 * down- and up-sampling stages need to line up.
 */
export function detInputSize(width: number, height: number, limitSideLen: number): { width: number; height: number } {
  const ratio = Math.max(width, height) > limitSideLen ? limitSideLen / Math.max(width, height) : 1;
  const round32 = (v: number) => Math.max(roundHalfEven(Math.trunc(v * ratio) / 32) * 32, 32);
  return { width: round32(width), height: round32(height) };
}

/** Python's round(): ties go to the even neighbour, so sizes match PaddleOCR's exactly. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface DetectOptions extends DbOptions {
  limitSideLen: number;
}

/** Text boxes of the page, corners clockwise from top-left in the page's pixel coordinates. */
export async function detect(session: ort.InferenceSession, img: RawImage, opts: DetectOptions): Promise<ScoredBox[]> {
  const size = detInputSize(img.width, img.height, opts.limitSideLen);
  const resized = resizeBilinear(img, size.width, size.height);
  const input = new Float32Array(3 * size.width * size.height);
  writeChw(resized, DET_NORM, input);
  const result = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', input, [1, 3, size.height, size.width]) });
  const map = outputOf(result, session, 'det');
  const [, , mh, mw] = map.dims;
  if (map.dims.length !== 4 || mh !== size.height || mw !== size.width) {
    throw new Error(`det model output is [${map.dims.join(', ')}], expected [1, 1, ${size.height}, ${size.width}]: not a DB text detector`);
  }
  const boxes = boxesFromProbability(map.data, size.width, size.height, img.width, img.height, opts);
  return finishBoxes(boxes, img.width, img.height);
}
