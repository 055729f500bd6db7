// The step result cache, as the runner uses it: a step's key is a digest of what decides its
// result (its type and the code's version of it, its models by key, its arguments with every
// reference resolved and every input file by the sha256 of its bytes, never by path or mtime);
// its entry is the result itself (v8's serialization: images, audio and tensors come back as
// they were). Entries are written under a temporary name and renamed into place, so a half-written
// one is never read; an entry that does not deserialize is a miss. Two runs that miss on one key
// compute it once: the first holds a lock file, the others wait for its entry.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { PIPELINES, pluginInfo, TASKS } from '../pipelines/catalog.js';
import { pidAlive } from '../protocol/pids.js';
export type { StepTiming as StepOutcome } from '../protocol/messages.js';
import { fileArgPaths } from '../workflow/file-args.js';
import type { PlanStep } from '../workflow/plan.js';
import { pickField } from '../workflow/references.js';
import { sha256Of } from '../protocol/sha256.js';

/** Bumped when the key's recipe or the entry's layout changes: entries of before are then misses. */
const FORMAT = 1;

interface Entry {
  format: number;
  value: unknown;
  /** How long computing it took. */
  ms: number;
}

/** An input file's sha256, remembered while its path, size, mtime and inode stay the same. */
const fileHashes = new Map<string, { id: string; sha256: string }>();

async function fileSha256(path: string): Promise<string> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    const id = `${st.size}:${st.mtimeMs}:${st.ino}`;
    const known = fileHashes.get(path);
    if (known?.id === id) return known.sha256;
    const sha256 = await sha256Of(fh);
    fileHashes.set(path, { id, sha256 });
    return sha256;
  } finally {
    await fh.close();
  }
}

function infoOf(step: PlanStep) {
  if (step.kind === 'task') return TASKS[step.type];
  return step.module ? pluginInfo(Object.fromEntries(step.models.map((m) => [m.role, m.path]))) : PIPELINES[step.type];
}

/** Why a step is not cached (null: it is): the answer is "off" in its outcome. */
export function notCached(step: PlanStep, args: Record<string, unknown>): string | null {
  if (step.kind === 'workflow') return 'a sub-workflow gathers results, it computes nothing';
  if (step.cache === false) return 'its "cache" is false';
  if (step.cache === true) return null;
  const info = infoOf(step);
  if (!info) return 'unknown type';
  return info.deterministic && !info.deterministic(args) ? 'not deterministic (say "cache": true to cache it anyway)' : null;
}

/**
 * The step's key. Files named by its arguments count by content; values from earlier steps by the
 * bytes of their serialization, so a changed crop, frame or tensor upstream is another key.
 */
export async function stepKey(step: PlanStep, args: Record<string, unknown>): Promise<string> {
  const info = infoOf(step);
  const files: Record<string, string> = {};
  let keyed: Record<string, unknown> = args;
  for (const pattern of info?.fileArgs ?? []) {
    for (const at of fileArgPaths(args, pattern.split('.'))) {
      // Only paths the daemon resolved from the workflow: a string from a result is refused anyway.
      if (pickField(step.arguments, at) !== pickField(args, at)) continue;
      files[at.join('.')] = await fileSha256(pickField(args, at) as string);
      keyed = withField(keyed, at, { file: files[at.join('.')] });
    }
  }
  const hash = createHash('sha256');
  hash.update(
    JSON.stringify({
      format: FORMAT,
      kind: step.kind,
      // A plugin by its file's content, not by where it lies.
      type: step.module ? { plugin: step.module.key } : step.type,
      version: info?.version ?? 1,
      models: step.models.map((m) => [m.role, m.key]),
    }),
  );
  hash.update(serialize(keyed));
  return hash.digest('hex');
}

/** A copy of `obj` with the value at `path` replaced (the arguments themselves are left as they are). */
function withField(obj: Record<string, unknown>, path: string[], value: unknown): Record<string, unknown> {
  const [head, ...rest] = path;
  const inner = obj[head!] as Record<string, unknown>;
  return { ...obj, [head!]: rest.length === 0 ? value : withField(inner, rest, value) };
}

export class StepCache {
  /** Bytes of entries this run wrote: the daemon counts them against --cache-size. */
  stored = 0;

  constructor(
    readonly dir: string,
    private readonly signal: AbortSignal,
  ) {}

  private path(key: string): string {
    return join(this.dir, key.slice(0, 2), key);
  }

  /** The stored result, or undefined. An entry that cannot be read back is removed: a miss. */
  async get(key: string): Promise<Entry | undefined> {
    const path = this.path(key);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch {
      return undefined;
    }
    try {
      const entry = deserialize(bytes) as Entry;
      if (entry?.format !== FORMAT) throw new Error('another format');
      // Its mtime is its last use: the daemon evicts the least recently used first.
      void utimes(path, new Date(), new Date()).catch(() => {});
      return entry;
    } catch {
      await rm(path, { force: true });
      return undefined;
    }
  }

  /**
   * Takes the key's lock, or waits while another run holds it: then its entry, if it stored one.
   * Resolves with the entry found, or null when this run holds the lock and is to compute.
   */
  async claim(key: string): Promise<Entry | null> {
    const lock = `${this.path(key)}.lock`;
    await mkdir(join(this.dir, key.slice(0, 2)), { recursive: true, mode: 0o700 });
    for (;;) {
      try {
        const fh = await open(lock, 'wx', 0o600);
        await fh.writeFile(String(process.pid));
        await fh.close();
        // Stored between our miss and our lock: no need to compute.
        const entry = await this.get(key);
        if (entry) await rm(lock, { force: true });
        return entry ?? null;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = Number(await readFile(lock, 'utf8').catch(() => ''));
      // A holder that died (its runner killed mid-step) leaves its lock: taken over.
      if (holder > 0 && !pidAlive(holder)) {
        await rm(lock, { force: true });
        continue;
      }
      await new Promise((r) => setTimeout(r, 25));
      this.signal.throwIfAborted();
      const entry = await this.get(key);
      if (entry) return entry;
    }
  }

  /**
   * Stores a computed result and lets go of the lock. Best effort: a value v8 cannot serialize (a
   * function in a plugin's result), a full disk or a removed folder leave the step uncached, the run unharmed.
   */
  async put(key: string, value: unknown, ms: number): Promise<boolean> {
    const path = this.path(key);
    const temp = `${path}.${process.pid}.tmp`;
    try {
      const bytes = serialize({ format: FORMAT, value, ms } satisfies Entry);
      await mkdir(join(this.dir, key.slice(0, 2)), { recursive: true, mode: 0o700 });
      await writeFile(temp, bytes, { mode: 0o600 });
      await rename(temp, path);
      this.stored += bytes.length;
      return true;
    } catch {
      await rm(temp, { force: true });
      return false;
    } finally {
      await this.release(key);
    }
  }

  /** Lets go of the key's lock without an entry (the step failed). */
  async release(key: string): Promise<void> {
    await rm(`${this.path(key)}.lock`, { force: true });
  }
}
