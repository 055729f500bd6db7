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

export function workflowPath(given: string): string {
  let path = resolve(currentDir(), given);
  // /dev/stdin, /dev/fd/N, /proc/self/fd/N name this process's files: in dwd they are dwd's own.
  // Redirected from a file, they lead to it; a pipe is refused below, and so is a file that no
  // path leads to any more (removed while open: its link reads "… (deleted)").
  if (/^\/dev\/(stdin|fd\/\d+)$|^\/proc\/(self|thread-self|\d+)\/fd\/\d+$/.test(path)) {
    let real = '';
    try {
      real = realpathSync(path);
    } catch {}
    // A file of that name may exist: "… (deleted)" is never the removed file itself.
    if (real && !real.endsWith(' (deleted)') && statSync(real, { throwIfNoEntry: false })?.isFile()) path = real;
    else if (statSync(path, { throwIfNoEntry: false })?.isFile())
      throw new DwError(
        'DW_ERR_FILE_NOT_FOUND',
        `workflow ${given} is a file of this dw with no path to it (removed?): dwd reads the workflow from its path, so save it to a file and give that`,
        { path },
      );
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
  return path;
}
