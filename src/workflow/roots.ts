// --allowed-roots: the daemon runs workflows with its own rights, so a request may only make it
// read files under these folders. Paths are compared after resolving symlinks and "..", so neither
// can step outside. Model packages installed with dw itself are always readable.
import { realpath } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { basename, dirname, join, sep } from 'node:path';
import { DwError } from '../protocol/errors.js';
import { OWN_ROOT } from './model-paths.js';

export class AllowedRoots {
  private readonly roots: string[];

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

  get active(): boolean {
    return this.roots.length > 0;
  }

  /**
   * Throws DW_ERR_PATH_FORBIDDEN unless the path, symlinks resolved, lies under a root. A path that
   * does not exist is judged by its resolved folder, so a refused one does not reveal whether it exists.
   */
  async check(path: string, what: string): Promise<void> {
    if (!this.active) return;
    const real = await realpath(path).catch(async () => join(await realpath(dirname(path)).catch(() => dirname(path)), basename(path)));
    if (this.roots.some((r) => real === r || real.startsWith(r + sep))) return;
    throw new DwError(
      'DW_ERR_PATH_FORBIDDEN',
      `${what} ${path}${real !== path ? ` (really ${real})` : ''} is outside the daemon's allowed roots: ${this.roots.slice(0, -1).join(', ')}`,
      { path, real },
    );
  }
}
