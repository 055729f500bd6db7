// Text recognition: the CRNN-style recogniser reads each line crop, CTC decoding turns its
// per-column class probabilities into characters.
import type * as ort from 'onnxruntime-node';
import type { RawImage } from '../types.js';
import { ctcGreedyDecode, type Decoded } from './ctc.js';
import { byAspectRatio, lineBatch } from './line-tensor.js';
import { outputOf } from './session-io.js';

export const REC_HEIGHT = 48;
/**
 * The narrowest batch. PaddleOCR pads every batch to at least 320 px; short items (a receipt's
 * prices) then cost as much as whole lines. 96 px halved the recogniser's time on the receipt and
 * read 19 test pages with the same character error rate as 320.
 */
export const REC_BASE_WIDTH = 96;
export const REC_BATCH = 6;

/**
 * The text and confidence of every crop, in the crops' order. Crops are batched by similar aspect
 * ratio, each batch as wide as its widest line; `between(done)` runs before each batch with the
 * number of crops read so far (for progress and cancellation).
 */
export async function recognize(session: ort.InferenceSession, crops: readonly RawImage[], dictionary: readonly string[], between: (done: number) => void): Promise<Decoded[]> {
  const out: Decoded[] = new Array<Decoded>(crops.length);
  const order = byAspectRatio(crops);
  for (let start = 0; start < order.length; start += REC_BATCH) {
    between(start);
    const idx = order.slice(start, start + REC_BATCH);
    const maxRatio = Math.max(REC_BASE_WIDTH / REC_HEIGHT, ...idx.map((i) => crops[i]!.width / crops[i]!.height));
    const width = Math.trunc(REC_HEIGHT * maxRatio);
    const input = lineBatch(idx.map((i) => crops[i]!), REC_HEIGHT, width);
    const probs = outputOf(await session.run({ [session.inputNames[0]!]: input }), session, 'rec');
    const [n, steps, classes] = probs.dims;
    if (probs.dims.length !== 3 || n !== idx.length || steps === undefined || classes === undefined) {
      throw new Error(`rec model output is [${probs.dims.join(', ')}], expected [${idx.length}, T, C]: not a CTC recogniser`);
    }
    if (classes !== dictionary.length) {
      throw new Error(`rec model has ${classes} classes but the keys give ${dictionary.length} (blank + ${dictionary.length - 2} keys + space): keys file does not match the model`);
    }
    idx.forEach((i, k) => {
      out[i] = ctcGreedyDecode(probs.data, steps, classes, dictionary, k * steps * classes);
    });
  }
  between(crops.length);
  return out;
}
