// The generic pipeline: one model file, inputs from the workflow, outputs as tensors. For models
// that have no dedicated pipeline; see inputs.ts for what an input can be.
import * as ort from 'onnxruntime-node';
import { DwError } from '../../protocol/errors.js';
import type { TensorData, TensorType } from '../../media/npy.js';
import type { Pipeline } from '../types.js';
import { checkArgs } from '../arguments.js';
import { ONNX_ARGS } from './args.js';
import { buildInputs } from './inputs.js';

export const onnxPipeline: Pipeline = {
  type: 'onnx',
  roles: [{ name: 'model', kind: 'onnx', required: true }],
  async run(args, ctx) {
    const a = checkArgs('onnx', args, ONNX_ARGS);
    const session = await ctx.session('model');
    const known = session.outputNames;
    const wanted = (a.outputs as string[] | undefined) ?? [...known];
    const unknown = wanted.filter((n) => !known.includes(n));
    if (unknown.length > 0)
      throw new DwError(
        'DW_ERR_BAD_ARGUMENT',
        `onnx: the model has no output ${unknown.map((n) => `"${n}"`).join(', ')}; outputs: ${known.join(', ')}`,
        { unknown, outputs: [...known] },
      );
    const feeds = await buildInputs(a.inputs as Record<string, unknown>, session.inputMetadata);
    if (ctx.signal.aborted) throw ctx.signal.reason;
    let got: ort.InferenceSession.ReturnType;
    try {
      got = await session.run(
        Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor(t.type, t.data as ort.Tensor.DataType, t.dims)])),
        wanted,
      );
    } catch (err) {
      throw new DwError('DW_ERR_RUN_FAILED', `onnx: onnxruntime failed: ${(err as Error).message}`);
    }
    const out: Record<string, TensorData> = {};
    for (const name of wanted) {
      const t = got[name] as ort.Tensor;
      out[name] = { kind: 'tensor', type: t.type as TensorType, dims: [...t.dims], data: t.data as TensorData['data'] };
    }
    return out;
  },
};
