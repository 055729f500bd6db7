// dw's own graph rewrites, on a model's bytes before onnxruntime reads them: exact algebraic
// identities that onnxruntime does not apply itself. Weights and every other node stay byte for
// byte as they were. Anything unusual (subgraphs, external data, a malformed file) means no
// rewrite: the caller loads the file itself and onnxruntime reports what it finds.
//
// On PP-OCRv4 (det, cls, rec) they took the OCR pipeline from 211 to 164 ms on the development
// machine, with the same text, boxes and line scores (README, Benchmarks: session setup;
// test/graph-rewrite.test.ts).
import { NotRewritable, noEdits, OnnxGraph, floatTensor, newNode, type Edits, type Node } from './onnx-graph.js';
import { ProtobufError } from './protobuf.js';

/** Output channels beyond any real Conv: a file claiming more is not trusted with the allocation. */
const MAX_CHANNELS = 1 << 16;

export interface Rewritten {
  bytes: Uint8Array;
  /** Hard-swish chains now x * HardSigmoid(x). */
  hardSwish: number;
  /** Scalar Mul/Add after a Conv now given per channel, which onnxruntime folds into the Conv. */
  perChannel: number;
}

/** Where a scalar Mul/Add (one input a one-element float constant, the other not) has its constant, or -1. */
function scalarAt(g: OnnxGraph, n: Node): number {
  if (!(OnnxGraph.is(n, 'Mul') || OnnxGraph.is(n, 'Add')) || n.inputs.length !== 2 || n.outputs.length !== 1 || n.attrs.size > 0) return -1;
  const at = n.inputs.findIndex((i) => g.scalar(i) !== null);
  return at >= 0 && g.scalar(n.inputs[1 - at]) === null ? at : -1;
}

/** The Conv a value comes from, directly or through scalar Mul/Add nodes. */
function convBehind(g: OnnxGraph, value: string): Node | null {
  const p = g.producer(value);
  if (OnnxGraph.is(p, 'Conv')) return p;
  const at = p ? scalarAt(g, p) : -1;
  return at < 0 ? null : convBehind(g, p!.inputs[1 - at]!);
}

/** The rank of a value when it is known here: a Conv's output has its weights' rank. */
function knownRank(g: OnnxGraph, value: string): number | null {
  const conv = convBehind(g, value);
  return conv ? (g.constantDims(conv.inputs[1])?.length ?? null) : null;
}

/**
 * Hard-swish exported for opsets < 14 is four elementwise passes, x * Clip(x + 3, 0, 6) / 6, and
 * onnxruntime fuses none of them. The same function is x * HardSigmoid(x; alpha 1/6, beta 1/2):
 * two passes, and HardSigmoid exists from opset 6.
 */
function fuseHardSwish(g: OnnxGraph, edits: Edits): number {
  let count = 0;
  const clipBounds = (clip: Node) =>
    g.opset < 11 ? [g.floatAttr(clip, 'min'), g.floatAttr(clip, 'max')] : [g.constant(clip.inputs[1]), g.constant(clip.inputs[2])];
  for (const div of g.nodes) {
    if (!OnnxGraph.is(div, 'Div') || div.inputs.length !== 2 || div.outputs.length !== 1) continue;
    const six = g.scalar(div.inputs[1]);
    if (six?.value !== 6) continue;
    const mul = g.producer(div.inputs[0]);
    if (!OnnxGraph.is(mul, 'Mul') || mul.inputs.length !== 2 || !g.onlyFeeds(mul, div)) continue;
    const clipAt = mul.inputs.findIndex((i) => OnnxGraph.is(g.producer(i), 'Clip'));
    const clip = g.producer(mul.inputs[clipAt]);
    const x = mul.inputs[1 - clipAt];
    if (!OnnxGraph.is(clip, 'Clip') || x === undefined || !g.onlyFeeds(clip, mul)) continue;
    const [lo, hi] = clipBounds(clip);
    const add = g.producer(clip.inputs[0]);
    if (lo !== 0 || hi !== 6 || !OnnxGraph.is(add, 'Add') || add.inputs.length !== 2 || !g.onlyFeeds(add, clip)) continue;
    const three = add.inputs.includes(x) ? g.scalar(add.inputs[add.inputs[0] === x ? 1 : 0]) : null;
    if (three?.value !== 3) continue;
    // A constant of higher rank than x would widen the result, which x * HardSigmoid(x) does not.
    const rank = Math.max(three.rank, six.rank);
    if (rank > 0 && rank > (knownRank(g, x) ?? 0)) continue;
    const gate = `${div.outputs[0]}/dw_hard_sigmoid`;
    const name = div.name || div.outputs[0]!;
    if ([gate, `${name}/dw_hard_sigmoid`, `${name}/dw_hard_swish`].some((taken) => g.has(taken))) continue;
    edits.replaced.set(
      div,
      Buffer.concat([
        newNode('HardSigmoid', `${name}/dw_hard_sigmoid`, [x], [gate], { alpha: 1 / 6, beta: 0.5 }),
        newNode('Mul', `${name}/dw_hard_swish`, [x, gate], [div.outputs[0]!]),
      ]),
    );
    for (const n of [add, clip, mul]) edits.removed.add(n);
    edits.reads.push(x);
    count++;
  }
  return count;
}

/**
 * A scalar Mul or Add straight after a Conv (PP-LCNetV3's learnable affine blocks in the
 * recogniser) is what onnxruntime folds into the Conv's weights and bias, but only when the
 * constant is the second input and shaped [C, 1, 1]. Given so (the value repeated per output
 * channel: the same broadcast), it is folded.
 */
function scalarAffineAsPerChannel(g: OnnxGraph, edits: Edits): number {
  let count = 0;
  const added: Buffer[] = [];
  for (const n of g.opset >= 7 ? g.nodes : []) {
    const at = scalarAt(g, n);
    if (at < 0 || edits.replaced.has(n) || edits.removed.has(n)) continue;
    const x = n.inputs[1 - at]!;
    const weights = g.constantDims(convBehind(g, x)?.inputs[1]);
    const perChannel = `${n.outputs[0]}/dw_per_channel`;
    // The Conv's output has the weights' rank; a scalar of higher rank would have widened it.
    if (!weights || weights.length < 3 || weights[0]! > MAX_CHANNELS || g.scalar(n.inputs[at])!.rank > weights.length || g.has(perChannel))
      continue;
    added.push(floatTensor(perChannel, [weights[0]!, ...weights.slice(2).map(() => 1)], g.constant(n.inputs[at])!));
    edits.replaced.set(n, newNode(n.op, n.name, [x, perChannel], n.outputs));
    edits.reads.push(x);
    count++;
  }
  edits.added.push(...added);
  return count;
}

/** The model rewritten, or null when nothing applies or the model is not one this handles. */
export function rewriteGraph(buf: Uint8Array): Rewritten | null {
  try {
    const g = new OnnxGraph(buf);
    if (g.opset < 6) return null;
    const edits = noEdits();
    const hardSwish = fuseHardSwish(g, edits);
    const perChannel = scalarAffineAsPerChannel(g, edits);
    return hardSwish + perChannel === 0 ? null : { bytes: g.write(edits), hardSwish, perChannel };
  } catch (err) {
    if (err instanceof NotRewritable || err instanceof ProtobufError || err instanceof RangeError) return null;
    throw err;
  }
}
