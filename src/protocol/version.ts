import { readFileSync } from 'node:fs';

/**
 * Bumped when a frame's shape changes incompatibly; the hello exchange compares it first.
 * 2: saved outputs travel in `output` events ahead of the result, not inside it.
 * 3: status lists every runner of the pool (`runners`, not `runner`); memory's runners carry their
 *    index, runs and whether they are stopped by a signal.
 * 4: files travel by content (run/validate `by_content`, `need` events, `offer` and `put`); the hello
 *    says the daemon's uid, host and input store size.
 */
export const PROTOCOL_VERSION = 4;

// Read at start rather than inlined at build time, so a daemon left running across an upgrade
// reports the version it was started from and the CLI can tell the two apart.
export const PACKAGE_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
