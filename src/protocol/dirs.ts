// Creating a folder and its missing parents, as mkdir -p does. Node 20's own recursive mkdir spins
// forever where mkdir keeps failing with ENOENT (any path under /proc: `dw run -o /proc/x` hung
// at 100% CPU), so the parents are made one at a time here and a second failure is an error.
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

export function makeDirs(dir: string, mode?: number): void {
  if (!makeDir(dir, mode)) {
    const parent = dirname(dir);
    if (parent === dir) throw enoent(dir);
    makeDirs(parent, mode);
    if (!makeDir(dir, mode)) throw enoent(dir);
  }
}

/** Makes `dir`; true if it is a folder now (made here or by another process), false if its parent is missing. */
function makeDir(dir: string, mode?: number): boolean {
  try {
    mkdirSync(dir, mode === undefined ? undefined : { mode });
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Another dw making the same folders at the same moment is no error.
    if (code === 'EEXIST') {
      if (statSync(dir).isDirectory()) return true;
      throw Object.assign(new Error(`${dir} exists and is not a folder`), { code: 'ENOTDIR', path: dir });
    }
    if (code === 'ENOENT') return false;
    throw err;
  }
}

function enoent(dir: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOENT: no such file or directory, mkdir '${dir}'`), { code: 'ENOENT', path: dir });
}
