// Text direction: PaddleOCR's angle classifier turns lines it finds upside down the right way up.
import type * as ort from 'onnxruntime-node';
import type { RawImage } from '../types.js';
import { rotate180 } from './image.js';
import { byAspectRatio, lineBatch } from './line-tensor.js';
import { outputOf } from './session-io.js';

export const CLS_HEIGHT = 48;
export const CLS_WIDTH = 192;
/**
 * Lines per run. Every line is padded to CLS_WIDTH, so batching wastes nothing, and each run costs
 * ~1 ms of its own: the receipt's 15 lines in one run instead of 6 + 6 + 3 (8.4 -> 7.7 ms).
 * The cap bounds the input tensor (32 lines: 3.5 MB).
 */
export const CLS_BATCH = 32;
/** Only a confident "180" flips a line: a wrong flip turns a readable line into garbage. */
export const CLS_THRESH = 0.9;

/**
 * The crops, each rotated 180 degrees when the classifier says label 1 ("180") with a score above
 * CLS_THRESH. `between` runs before each batch (to stop on cancellation).
 */
export async function fixDirection(session: ort.InferenceSession, crops: readonly RawImage[], between: () => void): Promise<RawImage[]> {
  const out = [...crops];
  const order = byAspectRatio(crops);
  for (let start = 0; start < order.length; start += CLS_BATCH) {
    between();
    const idx = order.slice(start, start + CLS_BATCH);
    const input = lineBatch(
      idx.map((i) => crops[i]!),
      CLS_HEIGHT,
      CLS_WIDTH,
    );
    const probs = outputOf(await session.run({ [session.inputNames[0]!]: input }), session, 'cls');
    if (probs.dims.length !== 2 || probs.dims[0] !== idx.length || probs.dims[1] !== 2) {
      throw new Error(`cls model output is [${probs.dims.join(', ')}], expected [${idx.length}, 2]: not a 0/180 direction classifier`);
    }
    idx.forEach((i, k) => {
      const p0 = probs.data[k * 2]!,
        p180 = probs.data[k * 2 + 1]!;
      if (p180 > p0 && p180 > CLS_THRESH) out[i] = rotate180(crops[i]!);
    });
  }
  return out;
}
