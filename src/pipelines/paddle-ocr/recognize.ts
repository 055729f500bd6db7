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
/** At most this many lines per run (PaddleOCR's rec_batch_num), which bounds the input tensor. */
export const REC_BATCH = 6;
/**
 * What one more session.run costs, in input columns of one line: ~3.5 ms of fixed cost per run
 * against ~55 us per 48 px column on 2 cores (1x96: 8.8 ms, 6x96: 35 ms, 6x288: 89 ms).
 */
export const REC_RUN_COLUMNS = 64;

/** The input width of a batch whose widest line is `ratio` times as wide as tall. */
export const batchWidth = (ratio: number): number => Math.trunc(REC_HEIGHT * Math.max(REC_BASE_WIDTH / REC_HEIGHT, ratio));

/**
 * Splits lines sorted by aspect ratio (narrowest first) into runs of consecutive lines, each padded
 * to its widest, so that padded columns plus REC_RUN_COLUMNS per run are fewest. The recogniser's
 * time is about proportional to that, so cutting where the width jumps (a receipt's prices, then
 * its item names) beats fixed groups of REC_BATCH: on the receipt, 2,926 columns in 5 runs instead
 * of 3,447 in 3. Returns the start of each run.
 */
export function planBatches(sortedRatios: readonly number[]): number[] {
  const n = sortedRatios.length;
  // cost[j]: the least cost of reading the first j lines; from[j]: where the last run starts.
  const cost = new Float64Array(n + 1).fill(Infinity);
  const from = new Int32Array(n + 1);
  cost[0] = 0;
  for (let j = 1; j <= n; j++) {
    // Sorted, so a run i..j-1 is as wide as its last line.
    const width = batchWidth(sortedRatios[j - 1]!);
    for (let i = Math.max(0, j - REC_BATCH); i < j; i++) {
      const c = cost[i]! + REC_RUN_COLUMNS + (j - i) * width;
      if (c < cost[j]!) {
        cost[j] = c;
        from[j] = i;
      }
    }
  }
  const starts: number[] = [];
  for (let j = n; j > 0; j = from[j]!) starts.unshift(from[j]!);
  return starts;
}

/**
 * The text and confidence of every crop, in the crops' order. Crops are batched by similar aspect
 * ratio (planBatches), each batch as wide as its widest line; `between(done)` runs before each
 * batch with the number of crops read so far (for progress and cancellation).
 */
export async function recognize(
  session: ort.InferenceSession,
  crops: readonly RawImage[],
  dictionary: readonly string[],
  between: (done: number) => void,
): Promise<Decoded[]> {
  const out: Decoded[] = new Array<Decoded>(crops.length);
  const order = byAspectRatio(crops);
  const ratio = (i: number) => crops[i]!.width / crops[i]!.height;
  const starts = planBatches(order.map(ratio));
  for (let b = 0; b < starts.length; b++) {
    const start = starts[b]!;
    between(start);
    const idx = order.slice(start, starts[b + 1] ?? order.length);
    const width = batchWidth(Math.max(...idx.map(ratio)));
    const input = lineBatch(
      idx.map((i) => crops[i]!),
      REC_HEIGHT,
      width,
    );
    const probs = outputOf(await session.run({ [session.inputNames[0]!]: input }), session, 'rec');
    const [n, steps, classes] = probs.dims;
    if (probs.dims.length !== 3 || n !== idx.length || steps === undefined || classes === undefined) {
      throw new Error(`rec model output is [${probs.dims.join(', ')}], expected [${idx.length}, T, C]: not a CTC recogniser`);
    }
    if (classes !== dictionary.length) {
      throw new Error(
        `rec model has ${classes} classes but the keys give ${dictionary.length} (blank + ${dictionary.length - 2} keys + space): keys file does not match the model`,
      );
    }
    idx.forEach((i, k) => {
      out[i] = ctcGreedyDecode(probs.data, steps, classes, dictionary, k * steps * classes);
    });
  }
  between(crops.length);
  return out;
}
