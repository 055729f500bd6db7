// Inputs and outputs of the export's graphs by the names optimum gives them, with element types
// and shapes read from the session's metadata, never assumed: float16 exports take and return
// float16, input_ids may be int32 or int64, a timestep float or int64 of any declared rank.
import type * as ort from 'onnxruntime-node';
import { floats, halves } from './float16.js';

type Meta = ort.InferenceSession.ValueMetadata;
export type Dim = number | string;

export interface Port {
  name: string;
  type: string;
  dims: Dim[];
}

/** A named input or output of a graph, or an error that says what the graph has instead. */
export function port(session: ort.InferenceSession, role: string, side: 'input' | 'output', name: string): Port {
  const names = side === 'input' ? session.inputNames : session.outputNames;
  const metas = side === 'input' ? session.inputMetadata : session.outputMetadata;
  const i = names.indexOf(name);
  if (i < 0)
    throw new Error(
      `${role}: the graph has no ${side} "${name}" (it has ${names.join(', ') || 'none'}); is it the ${role} of a diffusers/optimum ONNX export?`,
    );
  const meta = metas[i] as Meta;
  if (!meta.isTensor) throw new Error(`${role}: ${side} "${name}" is not a tensor`);
  return { name, type: meta.type, dims: [...meta.shape] };
}

/** A fixed (declared, positive) size of a dimension, or undefined for a symbolic one. */
export const fixed = (d: Dim | undefined): number | undefined => (typeof d === 'number' && d > 0 ? d : undefined);

/** The float32 values as a tensor of the port's float type. */
export function floatTensor(Tensor: typeof ort.Tensor, p: Port, data: Float32Array, dims: number[], half?: Uint16Array): ort.Tensor {
  if (p.type === 'float32') return new Tensor('float32', data, dims);
  if (p.type === 'float16') return new Tensor('float16', halves(data, half), dims);
  throw new Error(`"${p.name}" is ${p.type}; dw feeds float32 or float16 here`);
}

/** A float output's values as float32 (converted from float16), or an error naming what came instead. */
export function floatData(out: ort.InferenceSession.OnnxValueMapType, p: Port, role: string, into?: Float32Array): Float32Array {
  const t = out[p.name] as ort.Tensor | undefined;
  if (t?.type === 'float32') return t.data as Float32Array;
  // `into`, when it fits: a UNet's output converted every step would otherwise cost a fresh half megabyte each time.
  if (t?.type === 'float16') return floats(t.data as Uint16Array, into?.length === t.data.length ? into : undefined);
  throw new Error(`${role}: output "${p.name}" is ${t?.type ?? 'missing'}, not float32 or float16`);
}

/** Integer ids as the port's int32 or int64. */
export function idTensor(Tensor: typeof ort.Tensor, p: Port, ids: number[], dims: number[]): ort.Tensor {
  if (p.type === 'int64')
    return new Tensor(
      'int64',
      BigInt64Array.from(ids, (i) => BigInt(i)),
      dims,
    );
  if (p.type === 'int32') return new Tensor('int32', Int32Array.from(ids), dims);
  throw new Error(`"${p.name}" is ${p.type}; dw feeds int32 or int64 token ids`);
}
