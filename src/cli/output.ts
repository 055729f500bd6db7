// Saved outputs are written by the CLI, as the invoking user, under --output-dir: to a temporary
// name first and renamed into place, so an interrupted run never leaves half a file.
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { DwError } from '../protocol/errors.js';

export async function writeAtomic(dir: string, name: string, data: Buffer): Promise<string> {
  // The daemon already restricts names to bare file names; this keeps a hostile daemon from choosing a folder.
  if (basename(name) !== name || name === '.' || name === '..') throw new DwError('DW_ERR_OUTPUT', `refusing output name "${name}": not a plain file name`);
  const target = resolve(dir, name);
  const tmp = join(resolve(dir), `.${name}.${process.pid}.tmp`);
  try {
    await mkdir(resolve(dir), { recursive: true });
    await writeFile(tmp, data);
    await rename(tmp, target);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw new DwError('DW_ERR_OUTPUT', `cannot write ${target}: ${(err as Error).message}`, { path: target });
  }
  return target;
}
