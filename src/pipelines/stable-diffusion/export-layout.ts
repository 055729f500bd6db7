// The files of a diffusers / optimum ONNX export, as a stable-diffusion step's models: the folder
// given as "export", with any role given on its own taking precedence. The daemon expands a step
// into these before it checks, hashes and watches them, so every graph is a model of its own (with
// its external-data files) and every small file an asset, like any other pipeline's.
// Light on purpose (node:fs only): the catalog hands it to the daemon's workflow loader.
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { externalDataFiles } from './external-data.js';

export interface LayoutModel {
  role: string;
  kind: 'onnx' | 'text';
  path: string;
  /** External-data files of an onnx graph. */
  files?: string[];
}

export interface Layout {
  models: LayoutModel[];
  /** What is missing or wrong, one sentence each, naming the role and path. */
  problems: string[];
}

/** The asset files, by the role name the pipeline reads them with. */
export const ASSETS = {
  vocab: 'tokenizer/vocab.json',
  merges: 'tokenizer/merges.txt',
  tokenizerConfig: 'tokenizer/tokenizer_config.json',
  specialTokens: 'tokenizer/special_tokens_map.json',
  scheduler: 'scheduler/scheduler_config.json',
  vaeConfig: 'vae_decoder/config.json',
} as const;

const GRAPHS = ['text_encoder', 'unet', 'vae_decoder', 'vae_encoder'] as const;

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

/**
 * The models of a step from what it gives (absolute paths by role). `image` says whether the step
 * is image-to-image, which needs the VAE encoder; text-to-image leaves it unloaded.
 */
export function stableDiffusionLayout(given: Record<string, string>, opts: { image: boolean }): Layout {
  const problems: string[] = [];
  const root = given.export;
  if (root !== undefined) {
    if (!isDir(root))
      problems.push(
        `"export": ${root} is not a folder; make one with \`optimum-cli export onnx --model stabilityai/sd-turbo ${root}\` (see the README)`,
      );
    else if (!existsSync(join(root, 'model_index.json')))
      problems.push(`"export": ${root} has no model_index.json: is it a diffusers/optimum ONNX export?`);
    if (problems.length) return { models: [], problems };
  }
  const models: LayoutModel[] = [];
  const missingRoles: string[] = [];
  for (const role of GRAPHS) {
    if (role === 'vae_encoder' && !opts.image) continue;
    const path = given[role] ?? (root === undefined ? undefined : join(root, role, 'model.onnx'));
    if (path === undefined) {
      missingRoles.push(role);
      continue;
    }
    if (role === 'vae_encoder' && !existsSync(path)) {
      problems.push(
        `"image" (image-to-image) needs a VAE encoder, and ${path} does not exist: export one (optimum writes vae_encoder/) or give "vae_encoder"`,
      );
      continue;
    }
    let files: string[] = [];
    if (existsSync(path)) {
      try {
        files = externalDataFiles(path);
      } catch (err) {
        problems.push(`"${role}": ${(err as Error).message}`);
      }
    }
    models.push({ role, kind: 'onnx', path, ...(files.length ? { files } : {}) });
  }
  // tokenizer: a folder; scheduler: a folder or its scheduler_config.json.
  const tokenizer = given.tokenizer ?? (root === undefined ? undefined : join(root, 'tokenizer'));
  if (tokenizer === undefined) missingRoles.push('tokenizer');
  else if (given.tokenizer !== undefined && !isDir(tokenizer))
    problems.push(`"tokenizer": ${tokenizer} is not a folder (it holds vocab.json and merges.txt)`);
  else {
    models.push(
      { role: ASSETS.vocab, kind: 'text', path: join(tokenizer, 'vocab.json') },
      { role: ASSETS.merges, kind: 'text', path: join(tokenizer, 'merges.txt') },
    );
    for (const [role, file] of [
      [ASSETS.tokenizerConfig, 'tokenizer_config.json'],
      [ASSETS.specialTokens, 'special_tokens_map.json'],
    ] as const) {
      if (existsSync(join(tokenizer, file))) models.push({ role, kind: 'text', path: join(tokenizer, file) });
    }
  }
  const scheduler = given.scheduler ?? (root === undefined ? undefined : join(root, 'scheduler'));
  if (scheduler === undefined) missingRoles.push('scheduler');
  else models.push({ role: ASSETS.scheduler, kind: 'text', path: isDir(scheduler) ? join(scheduler, 'scheduler_config.json') : scheduler });
  // scaling_factor lives in the decoder's config.json, beside its graph.
  const decoder = models.find((m) => m.role === 'vae_decoder');
  const vaeConfig = decoder && join(dirname(decoder.path), 'config.json');
  if (vaeConfig && existsSync(vaeConfig)) models.push({ role: ASSETS.vaeConfig, kind: 'text', path: vaeConfig });
  if (missingRoles.length) {
    const why = opts.image && missingRoles.includes('vae_encoder') ? ' (image-to-image needs vae_encoder)' : '';
    problems.push(
      `needs "export" (a diffusers/optimum ONNX export folder) or ${missingRoles.map((r) => `"${r}"`).join(', ')} given on its own${why}`,
    );
  }
  return { models, problems };
}
