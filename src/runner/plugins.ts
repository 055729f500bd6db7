// Plugin pipelines: a workflow's `"type": "./my-pipeline.js"` names an ES module whose default
// export (or `pipeline` export) is a Pipeline, run with the same context as the built-in ones.
import { pathToFileURL } from 'node:url';
import { DwError } from '../protocol/errors.js';
import type { Pipeline } from '../pipelines/types.js';

const loaded = new Map<string, Promise<Pipeline>>();

async function importPlugin(path: string, key: string): Promise<Pipeline> {
  let mod: Record<string, unknown>;
  try {
    // The content hash in the URL makes an edited plugin a new module; the old one stays in
    // memory (ES modules cannot be unloaded) until the runner is replaced, e.g. by `dw clear`.
    mod = (await import(`${pathToFileURL(path).href}?sha256=${key}`)) as Record<string, unknown>;
  } catch (err) {
    throw new DwError('DW_ERR_PLUGIN', `plugin ${path} could not be loaded: ${(err as Error).message}`, { path });
  }
  const p = (mod.default ?? mod.pipeline) as Partial<Pipeline> | undefined;
  if (!p || typeof p.run !== 'function') {
    throw new DwError(
      'DW_ERR_PLUGIN',
      `plugin ${path} must export a pipeline (default export or "pipeline") with a run(args, ctx) function; it exports: ${Object.keys(mod).join(', ') || '(nothing)'}`,
      { path },
    );
  }
  if (p.roles !== undefined && !Array.isArray(p.roles))
    throw new DwError('DW_ERR_PLUGIN', `plugin ${path}: "roles" must be an array`, { path });
  return { type: p.type ?? path, roles: p.roles ?? [], run: p.run.bind(p) };
}

export function loadPlugin(module: { path: string; key: string }): Promise<Pipeline> {
  const id = `${module.path}?${module.key}`;
  let p = loaded.get(id);
  if (!p) {
    p = importPlugin(module.path, module.key);
    loaded.set(id, p);
    p.catch(() => loaded.delete(id));
  }
  return p;
}
