// CTC greedy decoding of the recogniser's per-timestep softmax, as PaddleOCR's CTCLabelDecode.

/**
 * The CTC classes of a PaddleOCR recogniser: index 0 is the blank, then one class per line of the
 * keys file, then a space (PaddleOCR's use_space_char=True appends it; the keys file has none).
 */
export function buildDictionary(keys: string): string[] {
  const lines = keys.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  // A trailing newline ends the last line; it does not start an empty class.
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return ['', ...lines, ' '];
}

let memo: { keys: string; dictionary: string[] } | undefined;

/** buildDictionary of the keys last asked for, built once: splitting 6,600 lines each run cost ~1 ms. */
export function dictionaryOf(keys: string): readonly string[] {
  if (memo?.keys !== keys) memo = { keys, dictionary: buildDictionary(keys) };
  return memo.dictionary;
}

export interface Decoded {
  text: string;
  /** Mean of the winning probabilities of the kept timesteps; 0 when nothing is kept. */
  score: number;
}

/** Above this a probability beats the rest of its row even with float32 rounding in the sum. */
const SURE = 0.5 + 1e-3;

function isDistribution(probs: Float32Array, offset: number, classes: number): boolean {
  let sum = 0;
  for (let c = 0; c < classes; c++) {
    const p = probs[offset + c]!;
    if (!(p >= 0)) return false;
    sum += p;
  }
  return Math.abs(sum - 1) < 1e-4;
}

/**
 * Decodes one sequence of `steps` timesteps of `classes` probabilities, stored row-major from
 * `offset` in `probs` (so a batch output can be decoded in place). Takes the arg-max class per
 * timestep, drops a class equal to the previous timestep's (one character held over several
 * timesteps), then drops blanks; a blank between two equal classes therefore keeps both.
 */
export function ctcGreedyDecode(probs: Float32Array, steps: number, classes: number, dictionary: readonly string[], offset = 0): Decoded {
  if (dictionary.length !== classes) throw new Error(`CTC dictionary has ${dictionary.length} classes, the model outputs ${classes}`);
  let text = '';
  let sum = 0;
  let kept = 0;
  let previous = -1;
  // In a row of probabilities (non-negative, summing to 1) a class above one half is the arg-max,
  // and the blank usually is one: scanning stops there instead of reading all 6,625 classes. Only
  // when the first row is such a distribution (a recogniser ending in softmax, as PaddleOCR's do).
  const sure = steps > 0 && isDistribution(probs, offset, classes) ? SURE : Infinity;
  for (let t = 0; t < steps; t++) {
    const row = offset + t * classes;
    let best = 0;
    let bestP = probs[row]!;
    for (let c = 1; c < classes && bestP <= sure; c++) {
      const p = probs[row + c]!;
      if (p > bestP) {
        bestP = p;
        best = c;
      }
    }
    if (best !== 0 && best !== previous) {
      text += dictionary[best];
      sum += bestP;
      kept += 1;
    }
    previous = best;
  }
  return { text, score: kept === 0 ? 0 : sum / kept };
}
