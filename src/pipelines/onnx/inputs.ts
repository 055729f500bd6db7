// The generic pipeline's inputs: each model input from a JSON tensor, a .npy file, an image with
// its preprocessing, or a tensor from an earlier step; then checked against the model's own
// metadata, so a mismatch names the input, what the model expects and what it got.
import type { InferenceSession } from 'onnxruntime-node';
import { DwError } from '../../protocol/errors.js';
import { isTensorData, readNpy, type TensorData, type TensorType } from '../../media/npy.js';
import { imageArg, isImage, resizeImage, type Fit, type RawImage } from '../../media/image.js';
import { checkArgs, image, number, oneOf } from '../arguments.js';
import { tensorFromJson } from './tensors.js';
import { readInput } from '../../media/read.js';

type Meta = InferenceSession.ValueMetadata;
type Dim = number | string;

const OWNER = 'onnx';

function dimsOf(meta: Meta): Dim[] | null {
  return meta.isTensor ? (meta.shape as Dim[]) : null;
}

export function describeMeta(meta: Meta): string {
  if (!meta.isTensor) return 'a non-tensor value';
  return `${meta.type} [${(meta.shape as Dim[]).map((d) => (typeof d === 'number' && d >= 0 ? d : typeof d === 'string' && d ? d : '?')).join(', ')}]`;
}

const describeTensor = (t: TensorData) => `${t.type} [${t.dims.join(', ')}]`;

/** The mismatch between what the model declares and a tensor, or null when it fits. */
export function mismatch(meta: Meta, t: TensorData): string | null {
  if (!meta.isTensor) return 'the model expects a non-tensor value, which this pipeline cannot make';
  if (meta.type !== t.type) return `element type ${t.type} instead of ${meta.type}`;
  const want = dimsOf(meta)!;
  // onnxruntime reports an unknown rank as an empty shape only for scalars; a rank mismatch is real.
  if (want.length !== t.dims.length) return `rank ${t.dims.length} instead of ${want.length}`;
  const bad = want.findIndex((d, i) => typeof d === 'number' && d >= 0 && d !== t.dims[i]);
  return bad >= 0 ? `dimension ${bad} is ${t.dims[bad]} instead of ${want[bad]}` : null;
}

const IMAGE_SPEC = {
  image,
  width: { ...number(1, 16384, { int: true }), optional: true },
  height: { ...number(1, 16384, { int: true }), optional: true },
  fit: { ...oneOf('fill', 'contain', 'cover'), default: 'fill' },
  layout: { ...oneOf('nchw', 'nhwc'), default: 'nchw' },
  channels: { ...oneOf('rgb', 'bgr', 'gray'), default: 'rgb' },
  scale: { ...number(0, Infinity), default: 1 / 255 },
  mean: {
    expected: 'an array of numbers, one per channel',
    ok: (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'number'),
    default: [0],
  },
  std: {
    expected: 'an array of non-zero numbers, one per channel',
    ok: (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'number' && x !== 0),
    default: [1],
  },
  type: { ...oneOf('float32', 'uint8'), optional: true },
};

/** A fixed spatial size the model declares for this layout, so a workflow need not repeat it. */
function modelSize(meta: Meta, layout: string): { width?: number; height?: number } {
  const d = dimsOf(meta);
  if (!d || d.length !== 4) return {};
  const [h, w] = layout === 'nchw' ? [d[2], d[3]] : [d[1], d[2]];
  const fixed = (x: Dim | undefined) => (typeof x === 'number' && x > 0 ? x : undefined);
  return { width: fixed(w), height: fixed(h) };
}

async function imageTensor(name: string, spec: Record<string, unknown>, meta: Meta): Promise<TensorData> {
  const a = checkArgs(`${OWNER}: input "${name}"`, spec, IMAGE_SPEC);
  const channels = a.channels as string;
  let img = await imageArg(a.image as string | RawImage, channels === 'gray' ? 'gray' : 'rgb', `${OWNER}: input "${name}"`);
  const size = {
    ...modelSize(meta, a.layout as string),
    ...(a.width ? { width: a.width as number } : {}),
    ...(a.height ? { height: a.height as number } : {}),
  };
  if ((size.width && size.width !== img.width) || (size.height && size.height !== img.height)) {
    img = await resizeImage(img, size, a.fit as Fit);
  }
  const c = img.channels;
  const type = (a.type as TensorType | undefined) ?? (meta.isTensor && meta.type === 'uint8' ? 'uint8' : 'float32');
  const mean = a.mean as number[],
    std = a.std as number[];
  for (const [k, v] of [
    ['mean', mean],
    ['std', std],
  ] as const) {
    if (v.length !== 1 && v.length !== c)
      throw new DwError('DW_ERR_BAD_ARGUMENT', `${OWNER}: input "${name}": "${k}" has ${v.length} values for ${c} channels`, {
        input: name,
        argument: k,
      });
  }
  const order = channels === 'bgr' ? [2, 1, 0] : [0, 1, 2].slice(0, c);
  const { width: w, height: h } = img;
  const out = type === 'uint8' ? new Uint8Array(w * h * c) : new Float32Array(w * h * c);
  const nchw = a.layout === 'nchw';
  for (let k = 0; k < c; k++) {
    const src = order[k]!;
    const m = mean[mean.length === 1 ? 0 : k]!,
      s = std[std.length === 1 ? 0 : k]!;
    const scale = a.scale as number;
    for (let p = 0; p < w * h; p++) {
      const v = img.data[p * c + src]!;
      out[nchw ? k * w * h + p : p * c + k] = type === 'uint8' ? v : (v * scale - m) / s;
    }
  }
  return { kind: 'tensor', type, dims: nchw ? [1, c, h, w] : [1, h, w, c], data: out };
}

async function inputTensor(name: string, value: unknown, meta: Meta): Promise<TensorData> {
  if (isTensorData(value)) return value;
  if (typeof value === 'string') {
    if (!value.endsWith('.npy'))
      throw new DwError('DW_ERR_BAD_ARGUMENT', `${OWNER}: input "${name}": a string must name a .npy file, got "${value}"`, {
        input: name,
      });
    return readNpy(await readInput(value, `${OWNER}: input "${name}"`, 'tensor'), value);
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && 'image' in value)
    return imageTensor(name, value as Record<string, unknown>, meta);
  if (isImage(value)) return imageTensor(name, { image: value }, meta);
  const type = meta.isTensor ? (meta.type as TensorType) : 'float32';
  return tensorFromJson(value, type, `${OWNER}: input "${name}"`);
}

/** Every model input built and checked; errors list all problems at once. */
export async function buildInputs(inputs: Record<string, unknown>, metas: readonly Meta[]): Promise<Record<string, TensorData>> {
  const byName = new Map(metas.map((m) => [m.name, m]));
  const problems: string[] = [];
  for (const name of Object.keys(inputs)) if (!byName.has(name)) problems.push(`"${name}" is not an input of the model`);
  for (const m of metas) if (!(m.name in inputs)) problems.push(`input "${m.name}" (${describeMeta(m)}) is not given`);
  const feeds: Record<string, TensorData> = {};
  for (const [name, value] of Object.entries(inputs)) {
    const meta = byName.get(name);
    if (!meta) continue;
    const t = await inputTensor(name, value, meta);
    const why = mismatch(meta, t);
    if (why) problems.push(`input "${name}": the model expects ${describeMeta(meta)}, got ${describeTensor(t)} (${why})`);
    feeds[name] = t;
  }
  if (problems.length > 0) {
    const expected = metas.map((m) => `${m.name}: ${describeMeta(m)}`);
    throw new DwError(
      'DW_ERR_BAD_ARGUMENT',
      `${OWNER}: the inputs do not fit the model:\n  ${problems.join('\n  ')}\nthe model's inputs: ${expected.join('; ')}`,
      { problems, expected },
    );
  }
  return feeds;
}
