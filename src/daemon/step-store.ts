// The daemon's side of the step cache (the runners read and write its entries: runner/step-cache.ts):
// where it is, how big it may grow (--cache-size, least recently used out first), what it holds,
// and how often steps found their result there. `dw cache` shows it; `dw cache clear` empties it.
// The folder is only ever walked asynchronously, one walk at a time: with hundreds of thousands of
// entries a walk takes seconds, which must not stop the daemon answering its clients.
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDirs } from '../protocol/dirs.js';
import type { CacheResult } from '../protocol/messages.js';
import { pidAlive } from '../protocol/pids.js';
import { type CacheNote, LEFT_ASIDE, STALE_MS } from '../runner/step-cache.js';

type CacheStats = Omit<CacheResult, 'cleared'>;

interface Found {
  path: string;
  size: number;
  mtime: number;
}

const ENTRY = /^[0-9a-f]{64}$/;
const TOP = /^[0-9a-f]{2}$/;

/**
 * Entry files under the store (two-character folders); with `locks`, lock files too. Files a
 * killed writer left aside (its pid is in the name, and gone) are removed on the way: nothing else
 * would ever remove them, and they are not counted against --cache-size.
 */
async function walk(dir: string, locks = false): Promise<{ entries: Found[]; locks: Found[] }> {
  const out = { entries: [] as Found[], locks: [] as Found[] };
  // Only real folders of two hex digits: a link put there leads out of the store, where nothing is ours to remove.
  const tops = (await readdir(dir, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory() && TOP.test(e.name));
  for (const { name: top } of tops) {
    const names = await readdir(join(dir, top)).catch(() => [] as string[]);
    for (const name of names) {
      const aside = LEFT_ASIDE.exec(name);
      if (aside) {
        // Its writer's pid gone, and untouched for a while: a writer in another pid namespace
        // sharing the store (its pid means nothing here) is still writing, and touching, its own.
        const st = await lstat(join(dir, top, name)).catch(() => null);
        if (st?.isFile() && Date.now() - st.mtimeMs > STALE_MS && !pidAlive(Number(aside[1])))
          await rm(join(dir, top, name), { force: true }).catch(() => {});
        continue;
      }
      const isEntry = ENTRY.test(name);
      if (!isEntry && !(locks && name.endsWith('.lock'))) continue;
      const st = await lstat(join(dir, top, name)).catch(() => null);
      if (st) (isEntry ? out.entries : out.locks).push({ path: join(dir, top, name), size: st.size, mtime: st.mtimeMs });
    }
  }
  return out;
}

export class StepStore {
  private bytes = 0;
  private count = 0;
  private hits = 0;
  private misses = 0;
  /** The walk in progress (or the last): walks and evictions take turns. */
  private busy: Promise<unknown> = Promise.resolve();
  private evicting = false;

  /** `maxBytes` 0: no step cache (runs get none). */
  constructor(
    readonly dir: string,
    readonly maxBytes: number,
  ) {
    if (maxBytes > 0) {
      makeDirs(dir, 0o700);
      void this.recount();
    }
  }

  get enabled(): boolean {
    return this.maxBytes > 0;
  }

  /** What a run is given: the store, and whether to run every step anyway and store anew (dw run --no-cache). */
  forRun(refresh: boolean): { dir: string; refresh: boolean } | null {
    return this.enabled ? { dir: this.dir, refresh } : null;
  }

  /** A hit, or an entry stored, as a runner reports it (runs that fail later included); past the bound, an eviction. */
  note(n: CacheNote): void {
    if (n.state === 'hit') this.hits++;
    else this.misses++;
    this.bytes += n.bytes;
    this.count += n.entries;
    if (this.bytes > this.maxBytes && !this.evicting) {
      this.evicting = true;
      void this.turn(() => this.evict())
        .catch(() => {}) // the next store's note tries again
        .finally(() => (this.evicting = false));
    }
  }

  private turn<T>(job: () => Promise<T>): Promise<T> {
    const next = this.busy.then(job, job);
    this.busy = next.catch(() => {});
    return next;
  }

  /** The entries in the folder, counted anew; call it within a turn. */
  private async rescan(): Promise<Found[]> {
    const { entries } = await walk(this.dir);
    this.bytes = entries.reduce((sum, f) => sum + f.size, 0);
    this.count = entries.length;
    return entries;
  }

  private recount(): Promise<Found[]> {
    return this.turn(() => this.rescan());
  }

  /** Least recently used first (a hit touches its entry's mtime), down to 90% of the bound. */
  private async evict(): Promise<void> {
    const entries = await this.rescan();
    for (const f of entries.sort((a, b) => a.mtime - b.mtime)) {
      if (this.bytes <= this.maxBytes * 0.9) break;
      await rm(f.path, { force: true }).catch(() => {});
      this.bytes -= f.size;
      this.count--;
    }
  }

  /** As the runners reported it (for status and memory: no walk). */
  stats(): CacheStats {
    return { dir: this.dir, max_bytes: this.maxBytes, bytes: this.bytes, entries: this.count, hits: this.hits, misses: this.misses };
  }

  /** Counted from the folder itself (dw cache). */
  async recounted(): Promise<CacheStats> {
    if (this.enabled) await this.recount();
    return this.stats();
  }

  /** Removes every entry, and locks no run has touched for a while (a run storing one right now may still add it). */
  async clear(): Promise<{ entries: number; bytes: number }> {
    return this.turn(async () => {
      const found = await walk(this.dir, true);
      for (const f of found.entries) await rm(f.path, { force: true }).catch(() => {});
      for (const l of found.locks) if (Date.now() - l.mtime > STALE_MS) await rm(l.path, { force: true }).catch(() => {});
      this.bytes = 0;
      this.count = 0;
      return { entries: found.entries.length, bytes: found.entries.reduce((sum, f) => sum + f.size, 0) };
    });
  }
}
