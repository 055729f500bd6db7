// The workflow path dw sends: absolute, since dwd reads the file itself from its own working
// directory. A pipe (`dw run /dev/stdin < f`, `dw validate <(…)`) would be opened by dwd, not by
// this process, so it is refused here with the reason instead of failing there obscurely.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { DwError } from '../protocol/errors.js';

export function workflowPath(given: string): string {
  const path = resolve(given);
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
