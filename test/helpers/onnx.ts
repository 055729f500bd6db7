// Tiny ONNX models written byte by byte, for edge cases no real model shows (a model that runs
// for a very long time inside one native call). Only the protobuf fields these graphs need.

import { bytesField as bytes, floatField, intField as int, messageField as msg } from '../../src/runner/protobuf.js';

type Field = Buffer;

const FLOAT = 1;
const INT64 = 7;

function tensorInt64(name: string, values: number[], dims = [values.length]): Buffer {
  const raw = Buffer.alloc(8 * values.length);
  values.forEach((v, i) => raw.writeBigInt64LE(BigInt(v), 8 * i));
  return Buffer.concat([...dims.map((d) => int(1, d)), int(2, INT64), bytes(8, name), bytes(9, raw)]);
}
export function tensorFloat(name: string, values: number[], dims: number[]): Buffer {
  const raw = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => raw.writeFloatLE(v, 4 * i));
  return Buffer.concat([...dims.map((d) => int(1, d)), int(2, FLOAT), bytes(8, name), bytes(9, raw)]);
}

export interface Attr {
  name: string;
  f?: number;
  i?: number;
  ints?: number[];
  t?: Buffer;
  g?: Buffer;
}
export function node(op: string, inputs: string[], outputs: string[], attrs: Attr[] = []): Field {
  const attr = attrs.map((a) => {
    const body = [bytes(1, a.name)];
    if (a.f !== undefined) body.push(floatField(2, a.f), int(20, 1));
    if (a.i !== undefined) body.push(int(3, a.i), int(20, 2));
    if (a.g) body.push(msg(6, a.g), int(20, 5));
    if (a.ints) body.push(...a.ints.map((v) => int(8, v)), int(20, 7));
    if (a.t) body.push(msg(5, a.t), int(20, 4));
    return msg(5, ...body);
  });
  return msg(
    1,
    ...inputs.map((x) => bytes(1, x)),
    ...outputs.map((x) => bytes(2, x)),
    bytes(3, `${op}_${outputs[0]}`),
    bytes(4, op),
    ...attr,
  );
}

export function valueInfo(field: number, name: string, dims: Array<number | string>): Field {
  const dim = dims.map((d) => msg(1, typeof d === 'number' ? int(1, d) : bytes(2, d)));
  return msg(field, bytes(1, name), msg(2, msg(1, int(1, FLOAT), msg(2, ...dim))));
}

/**
 * A stand-in for the direction classifier (input x [N,3,48,192], output [N,2]) that first
 * multiplies `size`×`size` matrices `rounds` times: one native call that does not yield for
 * many seconds, as a hung or pathological model would.
 */
export function slowClassifier(size = 4096, rounds = 12): Buffer {
  // m0 depends on the input, so onnxruntime cannot fold the products into a constant at load time.
  const nodes: Field[] = [
    node('ConstantOfShape', ['big_shape'], ['c0'], [{ name: 'value', t: tensorFloat('one', [1e-3], [1]) }]),
    node('ReduceSum', ['x'], ['xsum'], [{ name: 'keepdims', i: 0 }]),
    node('Mul', ['xsum', 'zero'], ['xzero']),
    node('Add', ['c0', 'xzero'], ['m0']),
  ];
  for (let r = 1; r <= rounds; r++) nodes.push(node('MatMul', [`m${r - 1}`, 'm0'], [`m${r}`]));
  nodes.push(
    node('ReduceSum', [`m${rounds}`], ['total'], [{ name: 'keepdims', i: 0 }]),
    node('Mul', ['total', 'zero'], ['nothing']),
    node(
      'ReduceMean',
      ['x'],
      ['mean'],
      [
        { name: 'axes', ints: [2, 3] },
        { name: 'keepdims', i: 0 },
      ],
    ),
    node('Slice', ['mean', 'starts', 'ends', 'axes'], ['two']),
    node('Add', ['two', 'nothing'], ['y']),
  );
  const graph = Buffer.concat([
    ...nodes,
    bytes(2, 'slow-classifier'),
    msg(5, tensorInt64('big_shape', [size, size])),
    msg(5, tensorFloat('zero', [0], [])),
    msg(5, tensorInt64('starts', [0])),
    msg(5, tensorInt64('ends', [2])),
    msg(5, tensorInt64('axes', [1])),
    valueInfo(11, 'x', ['N', 3, 48, 192]),
    valueInfo(12, 'y', ['N', 2]),
  ]);
  return model(graph);
}

/** A model of these graph fields (nodes, initializers as msg(5, ...), inputs and outputs). */
export function model(graph: Buffer, opset = 13): Buffer {
  return Buffer.concat([int(1, 8), bytes(2, 'dw-tests'), msg(7, graph), msg(8, bytes(1, ''), int(2, opset))]);
}

/** An initializer entry for a graph. */
export const initializer = (tensor: Buffer): Field => msg(5, tensor);
