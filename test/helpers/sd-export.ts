// Small Stable Diffusion exports made in test code: the folder layout optimum writes
// (model_index.json, scheduler/, tokenizer/, text_encoder/, unet/ with external data, vae_decoder/,
// vae_encoder/) and the real graph signatures (input_ids → last_hidden_state; sample, timestep,
// encoder_hidden_states → out_sample; latent_sample → sample; sample → latent_parameters), with
// graphs simple enough that a test can say by hand what image must come out:
//
//   text encoder  last_hidden_state[b, i, :] = TABLE[input_ids[b, i]]: 4 base-8 digits of the id
//   unet          out = (ks·sample + tokens(ehs) + kt·t + bias) · scale       (scale in model.onnx_data)
//                 tokens: with a fixed 1×80 latent, token x of ehs lands in column x (a strip image
//                 640×8 shows every token id); otherwise ehs averaged over tokens, broadcast
//   vae decoder   sample = DECODER · latent_sample (1×1 conv), upscaled ×8 (nearest)
//   vae encoder   latent_parameters = [ENCODER · mean of each 8×8 block of the image; logvar −30]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bytesField as bytes, intField as int, messageField as msg } from '../../src/runner/protobuf.js';
import { node, tensorFloat } from './onnx.js';
import { clipVocab, TEST_MERGES, type ClipFiles } from './clip-vocab.js';

const T = { float32: 1, int32: 6, int64: 7, float16: 10 } as const;
type Elem = keyof typeof T;

function valueInfo(field: number, name: string, type: Elem, dims: Array<number | string> | null): Buffer {
  const shape = dims === null ? [] : [msg(2, ...dims.map((d) => msg(1, typeof d === 'number' ? int(1, d) : bytes(2, d))))];
  return msg(field, bytes(1, name), msg(2, msg(1, int(1, T[type]), ...shape)));
}

function tensorInt64(name: string, values: number[], dims = [values.length]): Buffer {
  const raw = Buffer.alloc(8 * values.length);
  values.forEach((v, i) => raw.writeBigInt64LE(BigInt(v), 8 * i));
  return Buffer.concat([...dims.map((d) => int(1, d)), int(2, T.int64), bytes(8, name), bytes(9, raw)]);
}

/** A float32 initializer whose data sit in a file beside the model (ONNX external data). */
function externalFloat(name: string, dims: number[], location: string, offset: number, length: number): Buffer {
  const entry = (k: string, v: string) => msg(13, bytes(1, k), bytes(2, v));
  return Buffer.concat([
    ...dims.map((d) => int(1, d)),
    int(2, T.float32),
    bytes(8, name),
    entry('location', location),
    entry('offset', String(offset)),
    entry('length', String(length)),
    int(14, 1),
  ]);
}

function model(nodes: Buffer[], inits: Buffer[], inputs: Buffer[], outputs: Buffer[]): Buffer {
  const graph = Buffer.concat([...nodes, bytes(2, 'sd-test'), ...inits.map((t) => msg(5, t)), ...inputs, ...outputs]);
  return Buffer.concat([int(1, 8), bytes(2, 'dw-tests'), msg(7, graph), msg(8, bytes(1, ''), int(2, 13))]);
}

const cast = (from: string, to: string, type: Elem) => node('Cast', [from], [to], [{ name: 'to', i: T[type] }]);

/** The 4 numbers the text encoder gives a token: its id's base-8 digits, as d/8 - 0.5. */
export function tokenValues(id: number): number[] {
  return [id % 8, Math.floor(id / 8) % 8, Math.floor(id / 64) % 8, Math.floor(id / 512) % 8].map((d) => d / 8 - 0.5);
}

/** DECODER · (latents / scaling_factor), with scaling_factor 0.5: sample = [l0, l1, l2 + l3/2]. */
export const SCALING = 0.5;
export const DECODER = [
  [0.25, 0, 0, 0],
  [0, 0.25, 0, 0],
  [0, 0, 0.25, 0.125],
];
/** Latent channel c of the encoder is the mean of image channel c (c < 3), and 0 for channel 3. */
const ENCODER = [
  [1, 0, 0],
  [0, 1, 0],
  [0, 0, 1],
  [0, 0, 0],
];

export interface ExportOptions {
  /** Element type of the float tensors at the graphs' edges. */
  dtype?: 'float32' | 'float16';
  inputIds?: 'int32' | 'int64';
  timestep?: { type: 'float32' | 'float16' | 'int64'; shape: 'scalar' | 'one' | 'batch' };
  /** A fixed batch of 1 (two UNet calls per step under guidance) instead of a symbolic one. */
  fixedBatch?: boolean;
  /** Fixed latent size of the UNet (the token strip is 1×80); absent: symbolic height and width. */
  latent?: { h: number; w: number };
  /** out = (ks·sample + tokens + kt·t + bias) · scale */
  ks?: number;
  kt?: number;
  bias?: number[];
  scale?: number[];
  scheduler?: Record<string, unknown>;
  tokenizerConfig?: Record<string, unknown>;
  /** Zero bytes after the UNet's external data, to make it a big file. */
  dataPadding?: number;
  vaeEncoder?: boolean;
  vaeConfig?: boolean;
}

export interface Export {
  dir: string;
  vocab: ClipFiles;
  unetData: string;
  /** Rewrites the UNet's external data with another per-channel scale (same size, same inode not kept). */
  setScale(scale: number[]): void;
}

function textEncoder(o: ExportOptions, vocabSize: number): Buffer {
  const table = Array.from({ length: vocabSize }, (_, id) => tokenValues(id)).flat();
  const f = o.dtype ?? 'float32';
  const nodes = [node('Gather', ['table', 'input_ids'], [f === 'float16' ? 'h32' : 'last_hidden_state'], [{ name: 'axis', i: 0 }])];
  if (f === 'float16') nodes.push(cast('h32', 'last_hidden_state', 'float16'));
  const batch = o.fixedBatch ? 1 : 'batch';
  return model(
    nodes,
    [tensorFloat('table', table, [vocabSize, 4])],
    [valueInfo(11, 'input_ids', o.inputIds ?? 'int64', [batch, 77])],
    [valueInfo(12, 'last_hidden_state', f, [batch, 77, 4])],
  );
}

function unet(o: ExportOptions): Buffer {
  const f = o.dtype ?? 'float32';
  const ts = o.timestep ?? { type: 'float32', shape: 'batch' };
  const batch = o.fixedBatch ? 1 : 'batch';
  const nodes: Buffer[] = [];
  const in32 = (name: string) => {
    if (f === 'float32') return name;
    nodes.push(cast(name, `${name}_f`, 'float32'));
    return `${name}_f`;
  };
  const sample = in32('sample');
  const ehs = in32('encoder_hidden_states');
  nodes.push(node('Transpose', [ehs], ['e_t'], [{ name: 'perm', ints: [0, 2, 1] }]));
  if (o.latent && o.latent.h === 1 && o.latent.w === 80) {
    nodes.push(node('Unsqueeze', ['e_t', 'ax2'], ['e_4d']), node('Pad', ['e_4d', 'pads'], ['tokens']));
  } else {
    nodes.push(
      node(
        'ReduceMean',
        ['e_t'],
        ['e_mean'],
        [
          { name: 'axes', ints: [2] },
          { name: 'keepdims', i: 0 },
        ],
      ),
      node('Unsqueeze', ['e_mean', 'ax23'], ['tokens']),
    );
  }
  nodes.push(ts.type === 'float32' ? node('Identity', ['timestep'], ['t_f']) : cast('timestep', 't_f', 'float32'));
  nodes.push(
    node('Reshape', ['t_f', 't_shape'], ['t_4d']),
    node('Mul', [sample, 'ks'], ['s_k']),
    node('Mul', ['t_4d', 'kt'], ['t_k']),
    node('Add', ['s_k', 'tokens'], ['a1']),
    node('Add', ['a1', 't_k'], ['a2']),
    node('Add', ['a2', 'bias'], ['a3']),
    node('Mul', ['a3', 'scale'], [f === 'float32' ? 'out_sample' : 'out32']),
  );
  if (f === 'float16') nodes.push(cast('out32', 'out_sample', 'float16'));
  const inits = [
    tensorInt64('ax2', [2]),
    tensorInt64('ax23', [2, 3]),
    tensorInt64('pads', [0, 0, 0, 0, 0, 0, 0, 3]),
    tensorInt64('t_shape', [-1, 1, 1, 1]),
    tensorFloat('ks', [o.ks ?? 0], []),
    tensorFloat('kt', [o.kt ?? 0], []),
    tensorFloat('bias', o.bias ?? [0, 0, 0, 0], [1, 4, 1, 1]),
    externalFloat('scale', [1, 4, 1, 1], 'model.onnx_data', 0, 16),
  ];
  const [h, w] = o.latent ? [o.latent.h, o.latent.w] : ['height', 'width'];
  const tdims = ts.shape === 'scalar' ? [] : ts.shape === 'one' ? [1] : [batch];
  return model(
    nodes,
    inits,
    [
      valueInfo(11, 'sample', f, [batch, 4, h, w]),
      valueInfo(11, 'timestep', ts.type, tdims),
      valueInfo(11, 'encoder_hidden_states', f, [batch, 77, 4]),
    ],
    [valueInfo(12, 'out_sample', f, [batch, 4, h, w])],
  );
}

function vaeDecoder(o: ExportOptions): Buffer {
  const f = o.dtype ?? 'float32';
  const nodes: Buffer[] = [];
  let x = 'latent_sample';
  if (f === 'float16') nodes.push(cast(x, (x = 'l32'), 'float32'));
  nodes.push(node('Conv', [x, 'w'], ['c']), node('Resize', ['c', '', 'scales'], [f === 'float32' ? 'sample' : 's32']));
  if (f === 'float16') nodes.push(cast('s32', 'sample', 'float16'));
  const batch = o.fixedBatch ? 1 : 'batch';
  return model(
    nodes,
    [tensorFloat('w', DECODER.flat(), [3, 4, 1, 1]), tensorFloat('scales', [1, 1, 8, 8], [4])],
    [valueInfo(11, 'latent_sample', f, [batch, 4, 'lh', 'lw'])],
    [valueInfo(12, 'sample', f, [batch, 3, 'h', 'w'])],
  );
}

function vaeEncoder(o: ExportOptions): Buffer {
  const f = o.dtype ?? 'float32';
  const nodes: Buffer[] = [];
  let x = 'sample';
  if (f === 'float16') nodes.push(cast(x, (x = 's32'), 'float32'));
  // mean of each 8×8 block → 4 latent channels, then a logvar of −30 (std e^-15): a sample is the mean.
  nodes.push(
    node(
      'AveragePool',
      [x],
      ['pooled'],
      [
        { name: 'kernel_shape', ints: [8, 8] },
        { name: 'strides', ints: [8, 8] },
      ],
    ),
    node('Conv', ['pooled', 'w'], ['mean']),
    node('Mul', ['mean', 'zero'], ['z']),
    node('Add', ['z', 'logvar'], ['lv']),
    node('Concat', ['mean', 'lv'], [f === 'float32' ? 'latent_parameters' : 'p32'], [{ name: 'axis', i: 1 }]),
  );
  if (f === 'float16') nodes.push(cast('p32', 'latent_parameters', 'float16'));
  return model(
    nodes,
    [tensorFloat('w', ENCODER.flat(), [4, 3, 1, 1]), tensorFloat('zero', [0], []), tensorFloat('logvar', [-30], [])],
    [valueInfo(11, 'sample', f, ['batch', 3, 'h', 'w'])],
    [valueInfo(12, 'latent_parameters', f, ['batch', 8, 'lh', 'lw'])],
  );
}

const json = (v: unknown) => JSON.stringify(v, null, 2);

/** Writes an export folder under `dir` and returns where things are. */
export function writeExport(dir: string, o: ExportOptions = {}): Export {
  const vocab = clipVocab(TEST_MERGES);
  const size = Object.keys(JSON.parse(vocab.vocab) as object).length;
  for (const sub of ['scheduler', 'tokenizer', 'text_encoder', 'unet', 'vae_decoder', ...(o.vaeEncoder ? ['vae_encoder'] : [])])
    mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, 'model_index.json'), json({ _class_name: 'ORTStableDiffusionPipeline', _diffusers_version: '0.30.0' }));
  writeFileSync(
    join(dir, 'scheduler', 'scheduler_config.json'),
    json({
      _class_name: 'EulerDiscreteScheduler',
      num_train_timesteps: 1000,
      beta_start: 0.00085,
      beta_end: 0.012,
      beta_schedule: 'scaled_linear',
      prediction_type: 'epsilon',
      timestep_spacing: 'trailing',
      steps_offset: 1,
      ...o.scheduler,
    }),
  );
  writeFileSync(join(dir, 'tokenizer', 'vocab.json'), vocab.vocab);
  writeFileSync(join(dir, 'tokenizer', 'merges.txt'), vocab.merges);
  writeFileSync(join(dir, 'tokenizer', 'tokenizer_config.json'), json({ model_max_length: 77, ...o.tokenizerConfig }));
  writeFileSync(join(dir, 'tokenizer', 'special_tokens_map.json'), json({ bos_token: '<|startoftext|>', eos_token: '<|endoftext|>' }));
  writeFileSync(join(dir, 'text_encoder', 'model.onnx'), textEncoder(o, size));
  writeFileSync(join(dir, 'unet', 'model.onnx'), unet(o));
  const unetData = join(dir, 'unet', 'model.onnx_data');
  const setScale = (scale: number[]) => {
    const data = Buffer.alloc(16 + (o.dataPadding ?? 0));
    scale.forEach((s, i) => data.writeFloatLE(s, 4 * i));
    writeFileSync(unetData, data);
  };
  setScale(o.scale ?? [1, 1, 1, 1]);
  writeFileSync(join(dir, 'vae_decoder', 'model.onnx'), vaeDecoder(o));
  if (o.vaeConfig !== false)
    writeFileSync(join(dir, 'vae_decoder', 'config.json'), json({ _class_name: 'AutoencoderKL', scaling_factor: SCALING }));
  if (o.vaeEncoder) writeFileSync(join(dir, 'vae_encoder', 'model.onnx'), vaeEncoder(o));
  return { dir, vocab, unetData, setScale };
}

/** Pixel value of a decoder output value, as diffusers' numpy_to_pil: round(clip(x/2 + 0.5, 0, 1)·255), halves to even. */
export function pixel(x: number): number {
  const v = Math.min(1, Math.max(0, x / 2 + 0.5)) * 255;
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 ? r - 1 : r;
}

// Hand-computed ids (clip-vocab.ts layout: "a</w>" 320, merge k is 512 + k, then start and end).
export const BOS = 512 + TEST_MERGES.length;
export const EOS = BOS + 1;
export const pad = (ids: number[]) => [...ids, ...new Array(77 - ids.length).fill(EOS)];
export const STRIP_PROMPT = 'A red  FOX';
export const PROMPT_IDS = pad([BOS, 320, 512 + 13, 512 + 9, EOS]);
export const STRIP_NEGATIVE = 'low';
export const NEGATIVE_IDS = pad([BOS, 512 + 1, EOS]);

/** The token-strip export: a fixed 1×80 latent, a UNet predicting the sample, so the image is independent of the noise. */
export const STRIP: ExportOptions = {
  latent: { h: 1, w: 80 },
  bias: [1 / 64, -1 / 64, 1 / 32, 0],
  scheduler: { prediction_type: 'sample', clip_sample: false },
};

/** The decoder's image of final latents [4, h, w]: DECODER · latents / SCALING, each latent an 8×8 block. */
export function decoded(lat: (c: number, y: number, x: number) => number, h: number, w: number): Uint8Array {
  const out = new Uint8Array(3 * 64 * h * w);
  for (let Y = 0; Y < 8 * h; Y++) {
    for (let X = 0; X < 8 * w; X++) {
      for (let r = 0; r < 3; r++) {
        let s = 0;
        for (let c = 0; c < 4; c++) s += DECODER[r]![c]! * (lat(c, Y >> 3, X >> 3) / SCALING);
        out[3 * (Y * 8 * w + X) + r] = pixel(s);
      }
    }
  }
  return out;
}

/**
 * The strip export's image of STRIP_PROMPT (and STRIP_NEGATIVE under guidance g): guided token
 * values column by column, the bias alone past token 76, times the UNet's per-channel scale.
 */
export function stripExpected(g: number | null, scale = [1, 1, 1, 1]): Uint8Array {
  const bias = STRIP.bias!;
  return decoded(
    (c, _y, x) => {
      if (x >= 77) return scale[c]! * bias[c]!;
      const cond = tokenValues(PROMPT_IDS[x]!)[c]!;
      if (g === null) return scale[c]! * (bias[c]! + cond);
      const uncond = tokenValues(NEGATIVE_IDS[x]!)[c]!;
      return scale[c]! * (bias[c]! + uncond + g * (cond - uncond));
    },
    1,
    80,
  );
}
