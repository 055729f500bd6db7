// A model's content identity, the part of its cache key that says which bytes it was built from:
// the sha256 of its file, or, for a graph that keeps its weights in external-data files (a UNet's
// model.onnx_data), a sha256 over the graph's hash and each data file's name and hash. Every file
// is hashed by the FileHasher, so a multi-GB file is read once per version (path, size, mtime, inode).
import { createHash } from 'node:crypto';
import { basename, dirname, relative } from 'node:path';
import type { RunEvent } from '../protocol/messages.js';
import type { FileHasher } from './hashing.js';

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
