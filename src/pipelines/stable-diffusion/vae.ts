// The VAE's two ends: latents → pixels (vae_decoder, latent_sample → sample) and, for
// image-to-image, pixels → latents (vae_encoder, sample → latent_parameters or latent_sample).
import type * as ort from 'onnxruntime-node';
import type { RawImage } from '../../media/image.js';
import { floatData, floatTensor, port } from './graph-io.js';
import { roundHalfEven } from './schedulers.js';
import type { NoiseSource } from './noise-ahead.js';

/** Decodes latents / scaling_factor into an RGB image: pixel = round(clip(sample/2 + 0.5, 0, 1)·255). */
export async function decode(
  ortm: typeof ort,
  session: ort.InferenceSession,
  latents: Float32Array,
  scaling: number,
  h: number,
  w: number,
): Promise<RawImage> {
  const input = port(session, 'vae_decoder', 'input', 'latent_sample');
  const output = port(session, 'vae_decoder', 'output', 'sample');
  const scaled = latents.map((x) => x / scaling);
  const out = await session.run({ [input.name]: floatTensor(ortm.Tensor, input, scaled, [1, 4, h, w]) });
  const sample = floatData(out, output, 'vae_decoder');
  const H = 8 * h;
  const W = 8 * w;
  const dims = (out[output.name] as ort.Tensor).dims;
  if (dims.join() !== [1, 3, H, W].join()) throw new Error(`vae_decoder: "sample" is [${dims.join(', ')}], not [1, 3, ${H}, ${W}]`);
  const plane = H * W;
  const data = new Uint8Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      const v = Math.min(1, Math.max(0, sample[c * plane + i]! / 2 + 0.5)) * 255;
      // numpy_to_pil rounds with np.round: halves to even
      data[3 * i + c] = roundHalfEven(v);
    }
  }
  return { data, width: W, height: H, channels: 3 };
}

/**
 * Encodes an RGB image of the run's size into scaled latents. A latent_parameters output (mean and
 * log-variance, as optimum exports the encoder) is sampled with the run's noise, as diffusers'
 * latent_dist.sample(generator) does; a latent_sample output is taken as it is.
 */
export async function encode(
  ortm: typeof ort,
  session: ort.InferenceSession,
  img: RawImage,
  scaling: number,
  noise: NoiseSource,
): Promise<Float32Array> {
  const input = port(session, 'vae_encoder', 'input', 'sample');
  const plane = img.width * img.height;
  const x = new Float32Array(3 * plane);
  // [0, 255] → [-1, 1], planar
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) x[c * plane + i] = (img.data[3 * i + c]! / 255) * 2 - 1;
  const out = await session.run({ [input.name]: floatTensor(ortm.Tensor, input, x, [1, 3, img.height, img.width]) });
  const n = 4 * (img.height / 8) * (img.width / 8);
  let latents: Float32Array;
  if (session.outputNames.includes('latent_parameters')) {
    const p = floatData(out, port(session, 'vae_encoder', 'output', 'latent_parameters'), 'vae_encoder');
    if (p.length !== 2 * n) throw new Error(`vae_encoder: "latent_parameters" has ${p.length} values, not ${2 * n}`);
    const draw = await noise.take();
    latents = new Float32Array(n);
    for (let i = 0; i < n; i++) latents[i] = p[i]! + Math.exp(0.5 * Math.min(20, Math.max(-30, p[n + i]!))) * draw[i]!;
  } else {
    latents = floatData(out, port(session, 'vae_encoder', 'output', 'latent_sample'), 'vae_encoder');
    if (latents.length !== n) throw new Error(`vae_encoder: "latent_sample" has ${latents.length} values, not ${n}`);
  }
  return latents.map((v) => v * scaling);
}
