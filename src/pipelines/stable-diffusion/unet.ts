// The UNet as the denoising loop sees it: latents in, the guided prediction out. It reads the
// graph's signature once (element types, the timestep's type and rank, a fixed batch or size) and
// makes one call with a batch of 2 for classifier-free guidance when the batch is symbolic, two
// calls of batch 1 when it is fixed. Buffers are allocated once per generation, not per step.
import type * as ort from 'onnxruntime-node';
import { fixed, floatData, floatTensor, port, type Port } from './graph-io.js';
import { halfTable, halves, toHalf } from './float16.js';

export interface UnetSignature {
  sample: Port;
  timestep: Port;
  ehs: Port;
  out: Port;
  /** The batch the graph takes when it fixes one (1 for most fixed exports). */
  batch: number | undefined;
  /** The latent size the graph fixes, if it does (a 512×512 export: 64×64). */
  height: number | undefined;
  width: number | undefined;
}

/** Inputs beyond these belong to other families (SDXL's text_embeds/time_ids, LCM's timestep_cond). */
const KNOWN = ['sample', 'timestep', 'encoder_hidden_states'];

export function unetSignature(session: ort.InferenceSession): UnetSignature {
  const sample = port(session, 'unet', 'input', 'sample');
  const extra = session.inputNames.filter((n) => !KNOWN.includes(n));
  if (extra.length > 0)
    throw new Error(
      `unet: inputs ${extra.map((n) => `"${n}"`).join(', ')} are not supported (SD 1.x/2.x/Turbo UNets take only ${KNOWN.join(', ')}; SDXL and guidance-distilled LCM UNets take more)`,
    );
  if (sample.dims.length !== 4 || (fixed(sample.dims[1]) ?? 4) !== 4)
    throw new Error(`unet: "sample" is [${sample.dims.join(', ')}], not [batch, 4, height, width]`);
  const timestep = port(session, 'unet', 'input', 'timestep');
  if (!['float32', 'float16', 'int64'].includes(timestep.type))
    throw new Error(`unet: "timestep" is ${timestep.type}, not float32, float16 or int64`);
  return {
    sample,
    timestep,
    ehs: port(session, 'unet', 'input', 'encoder_hidden_states'),
    out: port(session, 'unet', 'output', 'out_sample'),
    batch: fixed(sample.dims[0]),
    height: fixed(sample.dims[2]),
    width: fixed(sample.dims[3]),
  };
}

/** `uncond + g·(cond − uncond)` from the halves of a batch of two, into `guided`. */
function guideHalves(bits: Uint16Array, n: number, g: number, guided: Float32Array): Float32Array {
  const t = halfTable();
  for (let i = 0; i < n; i++) {
    const u = t[bits[i]!]!;
    guided[i] = u + g * (t[bits[n + i]!]! - u);
  }
  return guided;
}

export interface UnetCall {
  /** The guided prediction for the (already scaled) latents at timestep t: `uncond + g·(cond − uncond)`. */
  predict(input: Float32Array, t: number): Promise<Float32Array>;
  /** Milliseconds spent inside session.run so far (the bench subtracts them). */
  runMs: number;
}

/**
 * `ehs` holds the text embeddings, [uncond, cond] when guiding (as diffusers concatenates them),
 * else [cond]; each is 77 × D floats.
 */
export function unetCall(
  ortm: typeof ort,
  session: ort.InferenceSession,
  sig: UnetSignature,
  ehs: Float32Array,
  guidance: number | null,
  latent: { h: number; w: number },
): UnetCall {
  const { Tensor } = ortm;
  const n = 4 * latent.h * latent.w;
  const perPrompt = ehs.length / (guidance === null ? 1 : 2);
  const D = perPrompt / 77;
  // Batch 2 in one call when the graph allows it; two calls of 1 when it fixes the batch at 1.
  const together = guidance !== null && sig.batch !== 1;
  if (guidance === null && sig.batch !== undefined && sig.batch !== 1)
    throw new Error(`unet: the graph fixes its batch at ${sig.batch}; dw runs it with 1 or 2`);
  const calls =
    guidance === null
      ? [{ batch: 1, ehsAt: 0 }]
      : together
        ? [{ batch: 2, ehsAt: 0 }]
        : [
            { batch: 1, ehsAt: 0 },
            { batch: 1, ehsAt: perPrompt },
          ];
  const ehsTensors = calls.map((c) => floatTensor(Tensor, sig.ehs, ehs.subarray(c.ehsAt, c.ehsAt + c.batch * perPrompt), [c.batch, 77, D]));
  const sampleBuf = new Float32Array(n * (together ? 2 : 1));
  // float16 exports: the input converted once per step into this, then copied for the second half of the batch
  const halfBuf = sig.sample.type === 'float16' ? new Uint16Array(n * (together ? 2 : 1)) : null;
  const guided = new Float32Array(n);
  // float16 exports: each call's output converted into its own buffer, step after step
  const outBufs = calls.map((c) => new Float32Array(c.batch * n));
  const tsDims = (batch: number) => (sig.timestep.dims.length === 0 ? [] : [fixed(sig.timestep.dims[0]) ?? batch]);
  const timestep = (t: number, batch: number): ort.Tensor => {
    const dims = tsDims(batch);
    const count = dims.length === 0 ? 1 : dims[0]!;
    // An int64 timestep takes diffusers' float timesteps truncated, as np.array([t], dtype=int64) does.
    if (sig.timestep.type === 'int64') return new Tensor('int64', new BigInt64Array(count).fill(BigInt(Math.trunc(t))), dims);
    if (sig.timestep.type === 'float16') return new Tensor('float16', new Uint16Array(count).fill(toHalf(t)), dims);
    return new Tensor('float32', new Float32Array(count).fill(t), dims);
  };
  const call: UnetCall = {
    runMs: 0,
    async predict(input, t) {
      const outs: Float32Array[] = [];
      for (const [k, c] of calls.entries()) {
        const dims = [c.batch, 4, latent.h, latent.w];
        let sample: ort.Tensor;
        if (halfBuf) {
          if (k === 0) halves(input, halfBuf.subarray(0, n));
          if (c.batch === 2) halfBuf.copyWithin(n, 0, n);
          sample = new Tensor('float16', halfBuf, dims);
        } else {
          sampleBuf.set(input, 0);
          if (c.batch === 2) sampleBuf.set(input, n);
          sample = new Tensor('float32', sampleBuf, dims);
        }
        const feeds = {
          [sig.sample.name]: sample,
          [sig.timestep.name]: timestep(t, c.batch),
          [sig.ehs.name]: ehsTensors[k]!,
        };
        const t0 = performance.now();
        const out = await session.run(feeds);
        call.runMs += performance.now() - t0;
        const got = out[sig.out.name] as ort.Tensor | undefined;
        // A float16 batch of two is guided straight from its bits, one pass instead of two.
        if (got?.type === 'float16' && together && got.data.length === 2 * n)
          return guideHalves(got.data as Uint16Array, n, guidance!, guided);
        outs.push(floatData(out, sig.out, 'unet', outBufs[k]));
      }
      const all = outs.length === 1 ? outs[0]! : null;
      if (guidance === null) return all!.length === n ? all! : all!.subarray(0, n);
      const uncond = all ? all.subarray(0, n) : outs[0]!;
      const cond = all ? all.subarray(n, 2 * n) : outs[1]!;
      if (uncond.length !== n || cond.length !== n)
        throw new Error(`unet: "out_sample" has ${cond.length} values, not the ${n} of the latents`);
      for (let i = 0; i < n; i++) guided[i] = uncond[i]! + guidance * (cond[i]! - uncond[i]!);
      return guided;
    },
  };
  return call;
}
