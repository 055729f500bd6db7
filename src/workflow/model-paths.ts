// Resolves a model path as written in a workflow: npm:PACKAGE/PATH, absolute, or relative to the
// workflow file. npm: paths are found by walking node_modules folders, not require.resolve, because
// model packages often restrict their "exports" to code and hide the asset files from it.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const NPM = 'npm:';
export const OWN_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A package name as npm allows it (validate-npm-package-name): no "..", no leading dot, URL-safe. */
const PACKAGE_NAME = /^(@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/i;

function splitPackage(spec: string): { pkg: string; sub: string } | null {
  const parts = spec.split('/');
  const n = spec.startsWith('@') ? 2 : 1;
  if (parts.length <= n) return null;
  const pkg = parts.slice(0, n).join('/');
  const sub = parts.slice(n);
  // The path stays inside the package: "npm:x/../../etc" is not one of its files.
  if (!PACKAGE_NAME.test(pkg) || sub.some((p) => p === '' || p === '.' || p === '..')) return null;
  return { pkg, sub: sub.join('/') };
}

function findPackageDir(pkg: string, from: string): string | null {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', pkg);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return null;
  }
}

/**
 * The absolute path a model reference points at, or a reason it cannot be resolved. The package is
 * looked up from the workflow's folder first, then from dw's own install (where bundled examples
 * find the packages dw depends on).
 */
/**
 * `ownOnly`: an npm: model only from dw's own install (a run by content: the workflow's folder is
 * a path on the client's host, and packages there are not the daemon's to load).
 */
export function resolveModelPath(ref: string, workflowDir: string, ownOnly = false): { path: string } | { error: string } {
  if (!ref.startsWith(NPM)) return { path: isAbsolute(ref) ? ref : resolve(workflowDir, ref) };
  const split = splitPackage(ref.slice(NPM.length));
  if (!split)
    return {
      error: `"${ref}" is not of the form npm:PACKAGE/PATH (a package name as npm allows it, then a path inside the package, without "..")`,
    };
  for (const from of ownOnly ? [OWN_ROOT] : [workflowDir, OWN_ROOT]) {
    const dir = findPackageDir(split.pkg, from);
    if (dir) return { path: join(dir, split.sub) };
  }
  return {
    error: `package ${split.pkg} is not installed (looked from ${workflowDir} and ${OWN_ROOT}); install it with npm install ${split.pkg}`,
  };
}
