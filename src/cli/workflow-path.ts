// The workflow path dw sends: absolute, since dwd reads the file itself from its own working
// directory. A pipe (`dw run /dev/stdin < f`, `dw validate <(…)`) would be opened by dwd, not by
// this process, so it is refused here with the reason instead of failing there obscurely.
import { realpathSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { DwError } from '../protocol/errors.js';

/**
 * The current folder, which relative paths of a request are relative to. One removed while a
 * shell was in it is a usage error that says so (it was a stack trace, and a dw that never exited).
 */
export function currentDir(): string {
  try {
    return process.cwd();
  } catch {
    const where = process.env.PWD ? ` (${process.env.PWD})` : '';
    throw new DwError('DW_ERR_USAGE', `the current folder${where} no longer exists; cd to one that does, and run again`);
  }
}

/** This process's own files by descriptor: in dwd they would be dwd's own. */
const OWN_FD = /^\/dev\/(stdin|fd\/\d+)$|^\/proc\/(self|thread-self|\d+)\/fd\/\d+$/;

export function workflowPath(given: string): string {
  let path = resolve(currentDir(), given);
  // Redirected from a file (`dw run /dev/stdin < f`), the descriptor leads to it. A file of the
  // name "… (deleted)" may exist, but it is never the removed file the descriptor holds.
  if (OWN_FD.test(path)) {
    try {
      const real = realpathSync(path);
      // A pipe's link ("pipe:[N]") leads nowhere: the descriptor itself is then judged below.
      if (!real.endsWith(' (deleted)') && statSync(real, { throwIfNoEntry: false })) path = real;
    } catch {}
  }
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    return path; // missing or unreadable: dwd says so, as for any path it cannot read
  }
  if (!st.isFile()) {
    const what = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a pipe' : st.isSocket() ? 'a socket' : 'a device';
    throw new DwError(
      'DW_ERR_FILE_NOT_FOUND',
      `workflow ${given} is ${what}, not a file: dwd reads the workflow from its path, so save it to a file and give that`,
      { path },
    );
  }
  // Still a descriptor, yet a file: one removed while open, which no path leads to any more.
  if (OWN_FD.test(path))
    throw new DwError(
      'DW_ERR_FILE_NOT_FOUND',
      `workflow ${given} is a file of this dw with no path to it (removed?): dwd reads the workflow from its path, so save it to a file and give that`,
      { path },
    );
  return path;
}
