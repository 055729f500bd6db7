// --allowed-roots: the daemon runs workflows with its own rights, so a request may only make it
// read files under these folders. Paths are compared after resolving symlinks and "..", so neither
// can step outside. Model packages installed with dw itself are always readable.
import { readlink, realpath } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { DwError } from '../protocol/errors.js';
import { OWN_ROOT } from './model-paths.js';

/**
 * Where a path leads, symlinks followed, whether or not it exists: a missing file is judged by its
 * resolved folder, a dangling link by where it points (judged by where it lies, a link inside a
 * root to a missing path outside answered "cannot be read", one to a present path "forbidden").
 */
async function whereLeads(path: string, hops = 0): Promise<string> {
  try {
    return await realpath(path);
  } catch {}
  const link = hops < 40 ? await readlink(path).catch(() => null) : null;
  if (link !== null) return whereLeads(resolve(dirname(path), link), hops + 1);
  return join(await realpath(dirname(path)).catch(() => dirname(path)), basename(path));
}

export class AllowedRoots {
  private readonly roots: string[];
  /** Folders no request may name, roots or not: the input store's files belong to the clients that sent them. */
  private readonly denied: Array<{ dir: string; why: string }> = [];

  /** `roots` null or empty: everything is allowed. Roots that do not exist are an error at start. */
  constructor(roots: string[] | null) {
    this.roots = (roots ?? []).map((r) => {
      try {
        return realpathSync(r);
      } catch {
        throw new DwError('DW_ERR_USAGE', `allowed root ${r} does not exist`, { root: r });
      }
    });
    if (this.roots.length > 0) this.roots.push(realpathSync(`${OWN_ROOT}/node_modules`));
  }

  /** Refuses every path under `dir` (which exists), with `why` naming it. */
  deny(dir: string, why: string): void {
    this.denied.push({ dir: realpathSync(dir), why });
  }

  get active(): boolean {
    return this.roots.length > 0;
  }

  /**
   * Throws DW_ERR_PATH_FORBIDDEN unless the path, symlinks resolved, lies under a root. A path that
   * does not exist is judged by its resolved folder, so a refused one does not reveal whether it exists.
   */
  async check(path: string, what: string): Promise<void> {
    if (!this.active && this.denied.length === 0) return;
    const real = await whereLeads(path);
    const under = (r: string) => real === r || real.startsWith(r + sep);
    const denied = this.denied.find((d) => under(d.dir));
    if (denied)
      throw new DwError('DW_ERR_PATH_FORBIDDEN', `${what} ${path} lies in ${denied.why}, which no workflow may name`, { path, real });
    if (!this.active || this.roots.some(under)) return;
    throw new DwError(
      'DW_ERR_PATH_FORBIDDEN',
      `${what} ${path}${real !== path ? ` (really ${real})` : ''} is outside the daemon's allowed roots: ${this.roots.slice(0, -1).join(', ')}`,
      { path, real },
    );
  }
}
