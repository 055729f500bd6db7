// A model's identity, in one place: its cache key is "DIGEST:OPTIONS" for an onnx model (a session)
// and "DIGEST" for a text asset. DIGEST says which bytes it was built from: the sha256 of its file,
// or, for a graph that keeps its weights in external-data files (a UNet's model.onnx_data), a sha256
// over the graph's hash and each data file's name and hash. OPTIONS digests every session option,
// defaults filled in, so two workflows that spell the defaults differently share one session.
// Every file is hashed by the FileHasher: a multi-GB file is read once per version.
import { createHash } from 'node:crypto';
import { basename, dirname, relative } from 'node:path';
import type { RunEvent } from '../protocol/messages.js';
import { SESSION_DEFAULTS, type Plan, type SessionOptionsSpec } from '../workflow/plan.js';
import type { FileHasher } from './hashing.js';

/** The options part of a session's key: every option (defaults filled in), in a fixed order. */
export function optionsDigest(session: SessionOptionsSpec): string {
  const given = Object.fromEntries(Object.entries(session).filter(([, v]) => v !== undefined));
  const full: Record<string, unknown> = { ...SESSION_DEFAULTS, ...given };
  const canonical = JSON.stringify(
    Object.keys(full)
      .sort()
      .map((k) => [k, full[k]]),
  );
  return createHash('sha256').update(canonical).digest('hex').slice(0, 8);
}

/** The key of a model built from `digest`: with its session options for an onnx model. */
export function modelKey(kind: 'onnx' | 'text', digest: string, session: SessionOptionsSpec): string {
  return kind === 'onnx' ? `${digest}:${optionsDigest(session)}` : digest;
}

/** The content part of a key. */
export const digestOf = (key: string): string => key.split(':')[0]!;

/** Why a model is loaded again: its file now holds other bytes. */
export const describeChange = (from: string, to: string): string =>
  `model file changed on disk (sha256 ${from.slice(0, 12)}… → ${to.slice(0, 12)}…)`;

/** Fills in every model's key (and a plugin module's hash) before the plan goes anywhere. */
export async function assignKeys(plan: Plan, hasher: FileHasher, emit: (e: RunEvent) => void = () => {}): Promise<void> {
  for (const step of plan.steps) {
    for (const model of step.models) model.key = modelKey(model.kind, await modelDigest(hasher, model, step.name, emit), step.session);
    if (step.module) step.module.key = await hasher.sha256(step.module.path);
  }
}

/** Files above this size get progress events while they are hashed the first time. */
export const BIG_FILE = 64 * 1024 * 1024;

interface Model {
  role?: string;
  path: string;
  files?: string[];
}

/**
 * The digest of the model's files. With `step` and `emit`, a big file being read for the first
 * time is announced and its progress reported (the first load of a 3 GB UNet spends a while here).
 */
export async function modelDigest(
  hasher: FileHasher,
  model: Model,
  step?: string,
  emit: (e: RunEvent) => void = () => {},
): Promise<string> {
  const hashOne = (file: string) => {
    const what = file === model.path ? (model.role ?? basename(file)) : `${model.role ?? 'model'} data ${basename(file)}`;
    let shown = -1;
    return hasher.sha256(
      file,
      (size) =>
        size >= BIG_FILE &&
        step !== undefined &&
        emit({
          kind: 'log',
          level: 'info',
          message: `${step}: hashing ${what} (${(size / 1048576).toFixed(0)} MB), once per file version`,
        }),
      (done, size) => {
        if (size < BIG_FILE || step === undefined) return;
        // Twenty updates at most: enough for a live line, few enough for a log.
        const twentieth = Math.floor((20 * done) / size);
        if (twentieth === shown) return;
        shown = twentieth;
        emit({ kind: 'progress', step, done: Math.floor(done / 1048576), total: Math.floor(size / 1048576), unit: `MB of ${what} hashed` });
      },
    );
  };
  const main = await hashOne(model.path);
  if (!model.files?.length) return main;
  const h = createHash('sha256').update(main);
  // The name is part of it: onnxruntime finds the data by the name the graph gives.
  for (const f of model.files) h.update(`\n${relative(dirname(model.path), f)}:${await hashOne(f)}`);
  return h.digest('hex');
}
