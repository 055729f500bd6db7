// Creating a folder and its missing parents, as mkdir -p does. Node 20's own recursive mkdir spins
// forever where mkdir keeps failing with ENOENT (any path under /proc: `dw run -o /proc/x` hung
// at 100% CPU), so the parents are made one at a time here and a second failure is an error.
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

export function makeDirs(dir: string, mode?: number): void {
  try {
    mkdirSync(dir, mode === undefined ? undefined : { mode });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && statSync(dir).isDirectory()) return;
    const parent = dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw err;
    makeDirs(parent, mode);
    mkdirSync(dir, mode === undefined ? undefined : { mode });
  }
}
