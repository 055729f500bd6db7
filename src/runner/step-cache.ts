// The step result cache, as the runner uses it: a step's key is a digest of what decides its
// result (its type and the code's version of it, its models by key, its arguments with every
// reference resolved and every input file by the sha256 of its bytes, never by path or mtime);
// its entry is the result itself (v8's serialization: images, audio and tensors come back as
// they were). Entries are written under a temporary name and renamed into place, so a half-written
// one is never read; an entry that does not deserialize is a miss. Two runs that miss on one key
// compute it once: the first holds a lock file, the others wait for its entry.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { PIPELINES, pluginInfo, TASKS } from '../pipelines/catalog.js';
import { readRegularFile } from '../media/read.js';
import { pidAlive } from '../protocol/pids.js';
export type { StepTiming as StepOutcome } from '../protocol/messages.js';
import { fileArgPaths } from '../workflow/file-args.js';
import type { PlanStep } from '../workflow/plan.js';
import { pickField } from '../workflow/references.js';
import { sha256Of } from '../protocol/sha256.js';

/** Bumped when the key's recipe or the entry's layout changes: entries of before are then misses. */
const FORMAT = 2;

interface Entry {
  format: number;
  value: unknown;
  /** How long computing it took. */
  ms: number;
}

/**
 * An input file's sha256, remembered while its path, size, mtime, ctime and inode stay the same
 * (ctime: a file rewritten in place with its mtime set back still moved it; daemon/hashing.ts).
 */
const fileHashes = new Map<string, { id: string; sha256: string }>();

async function fileSha256(path: string): Promise<string> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    const id = `${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.ino}`;
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

/** What one cached step did to the store, for the daemon's count (--cache-size) and hit rate. */
export interface CacheNote {
  state: 'hit' | 'miss';
  /** Bytes the store grew by (an entry replaced counts its difference). */
  bytes: number;
  /** Entries it gained (0 or 1). */
  entries: number;
}

/** A lock's holder touches it this often while it computes; one untouched for STALE_MS has none. */
const HEARTBEAT_MS = 2000;
export const STALE_MS = 10_000;

/** Prototypes v8's serialization gives back as they were; other objects would come back as plain ones. */
const KEPT = new Set<unknown>([Object.prototype, null, Array.prototype, Map.prototype, Set.prototype, Date.prototype]);

/**
 * Whether `value` is data that comes back from the cache exactly as it is: plain objects, arrays,
 * Maps, Sets, Dates, typed arrays and buffers. A class instance (a plugin's ort.Tensor) would come
 * back without its class, so such a result is not stored.
 */
export function storable(value: unknown): boolean {
  const seen = new Set<object>();
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') {
      if (typeof v === 'function' || typeof v === 'symbol') return false;
      continue;
    }
    if (seen.has(v)) continue;
    seen.add(v);
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) continue;
    if (!KEPT.has(Object.getPrototypeOf(v))) return false;
    if (v instanceof Map) for (const [k, x] of v) stack.push(k, x);
    else if (v instanceof Set) for (const x of v) stack.push(x);
    else if (!(v instanceof Date)) for (const x of Object.values(v)) stack.push(x);
  }
  return true;
}

/**
 * Names files written aside (`<key>.<pid>.<n>.tmp`, `<key>.lock.<pid>.<n>`) apart across the
 * runs of one runner: two runs storing one key at once shared a name and failed each other.
 */
let tempSeq = 0;

/** A file written aside and left by a writer that was killed: its pid is in its name (the daemon sweeps them). */
export const LEFT_ASIDE = /^[0-9a-f]{64}(?:\.lock)?\.(\d+)\.\d+(?:\.tmp)?$/;

export class StepCache {
  /** Locks this run holds, with their heartbeats. */
  private readonly held = new Map<string, NodeJS.Timeout>();

  constructor(
    readonly dir: string,
    private readonly signal: AbortSignal,
    private readonly note: (n: CacheNote) => void = () => {},
  ) {
    // A cancelled or abandoned run lets go of its locks at once: runs waiting for them go on.
    signal.addEventListener('abort', () => {
      for (const key of [...this.held.keys()]) void this.release(key);
    });
  }

  private path(key: string): string {
    return join(this.dir, key.slice(0, 2), key);
  }

  /**
   * The stored result, or undefined. An entry is its payload's sha256, then the payload: one that
   * does not match (a flipped bit, a cut file) or does not read back is removed, and is a miss.
   */
  async get(key: string): Promise<Entry | undefined> {
    const path = this.path(key);
    let bytes: Buffer;
    try {
      // Not a regular file (a named pipe put there) is a miss, not a run blocked on it.
      bytes = await readRegularFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTREG') await rm(path, { force: true, recursive: true }).catch(() => {});
      return undefined;
    }
    try {
      const payload = bytes.subarray(32);
      if (bytes.length < 32 || !createHash('sha256').update(payload).digest().equals(bytes.subarray(0, 32))) throw new Error('damaged');
      const entry = deserialize(payload) as Entry;
      if (entry?.format !== FORMAT) throw new Error('another format');
      // Its mtime is its last use: the daemon evicts the least recently used first.
      void utimes(path, new Date(), new Date()).catch(() => {});
      this.note({ state: 'hit', bytes: 0, entries: 0 });
      return entry;
    } catch {
      await rm(path, { force: true });
      return undefined;
    }
  }

  /**
   * Takes the key's lock, or waits while another run holds it and computes: then its entry. A
   * lock whose holder is gone (a dead pid, or no heartbeat for STALE_MS: a killed runner, a lock
   * left half-made on a full disk) is taken over. Resolves with the entry found, or null when
   * this run holds the lock and is to compute. `waiting` is told once, with the holder's pid.
   */
  async claim(key: string, waiting: (pid: number) => void = () => {}): Promise<Entry | null> {
    const lock = `${this.path(key)}.lock`;
    await mkdir(join(this.dir, key.slice(0, 2)), { recursive: true, mode: 0o700 });
    let told = false;
    for (;;) {
      if (await this.lock(lock)) {
        this.held.set(
          key,
          setInterval(() => void utimes(lock, new Date(), new Date()).catch(() => {}), HEARTBEAT_MS),
        );
        // Stored between our miss and our lock: no need to compute.
        const entry = await this.get(key);
        if (entry) await this.release(key);
        return entry ?? null;
      }
      const st = await stat(lock).catch(() => null);
      if (!st) continue;
      // No run makes anything but a file there: whatever else it is (a named pipe) has no holder.
      if (!st.isFile()) {
        await rm(lock, { force: true, recursive: true });
        continue;
      }
      const holder = Number(await readRegularFile(lock, 32).then(String, () => ''));
      if (Date.now() - st.mtimeMs > STALE_MS || (holder > 0 && !pidAlive(holder))) {
        await rm(lock, { force: true });
        continue;
      }
      if (!told) waiting(holder);
      told = true;
      await new Promise((r) => setTimeout(r, 25));
      this.signal.throwIfAborted();
      const entry = await this.get(key);
      if (entry) return entry;
    }
  }

  /** Makes the lock with this pid in it, or false when it exists: written aside and linked, so a lock is never empty. */
  private async lock(lock: string): Promise<boolean> {
    const temp = `${lock}.${process.pid}.${++tempSeq}`;
    try {
      await writeFile(temp, String(process.pid), { mode: 0o600 });
      await link(temp, lock);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    } finally {
      await rm(temp, { force: true });
    }
  }

  /**
   * Stores a computed result and lets go of the lock. Best effort: a result that would not come
   * back as it is (see storable), a full disk or a removed folder leave the step uncached, the run
   * unharmed. Resolves with why a storable result was not stored (an errno), else null. Either
   * way the step counts as a miss.
   */
  async put(key: string, value: unknown, ms: number): Promise<string | null> {
    const path = this.path(key);
    const temp = `${path}.${process.pid}.${++tempSeq}.tmp`;
    try {
      if (!storable(value)) {
        this.note({ state: 'miss', bytes: 0, entries: 0 });
        return null;
      }
      const payload = serialize({ format: FORMAT, value, ms } satisfies Entry);
      const bytes = Buffer.concat([createHash('sha256').update(payload).digest(), payload]);
      await mkdir(join(this.dir, key.slice(0, 2)), { recursive: true, mode: 0o700 });
      await writeFile(temp, bytes, { mode: 0o600 });
      const before = await stat(path).catch(() => null);
      await rename(temp, path);
      this.note({ state: 'miss', bytes: bytes.length - (before?.size ?? 0), entries: before ? 0 : 1 });
      return null;
    } catch (err) {
      await rm(temp, { force: true });
      this.note({ state: 'miss', bytes: 0, entries: 0 });
      return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    } finally {
      await this.release(key);
    }
  }

  /** A step computed without the store (it could not even be locked): a miss all the same. */
  missed(): void {
    this.note({ state: 'miss', bytes: 0, entries: 0 });
  }

  /** Lets go of the key's lock (held or not) and its heartbeat. */
  async release(key: string): Promise<void> {
    clearInterval(this.held.get(key));
    if (!this.held.delete(key)) return;
    await rm(`${this.path(key)}.lock`, { force: true });
  }
}
