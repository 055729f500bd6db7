// The daemon's side of the step cache (the runners read and write its entries: runner/step-cache.ts):
// where it is, how big it may grow (--cache-size, least recently used out first), what it holds,
// and how often runs found what they needed there. `dw cache` shows it; `dw cache clear` empties it.
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { makeDirs } from '../protocol/dirs.js';
import type { CacheResult, StepTiming } from '../protocol/messages.js';

type CacheStats = Omit<CacheResult, 'cleared'>;

interface Found {
  path: string;
  size: number;
  mtime: number;
}

/** Entry files under the store (two-character folders), without locks and temporaries. */
function entries(dir: string): Found[] {
  const out: Found[] = [];
  let tops: string[];
  try {
    tops = readdirSync(dir);
  } catch {
    return out;
  }
  for (const top of tops) {
    let names: string[];
    try {
      names = readdirSync(join(dir, top));
    } catch {
      continue;
    }
    for (const name of names) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      try {
        const st = statSync(join(dir, top, name));
        out.push({ path: join(dir, top, name), size: st.size, mtime: st.mtimeMs });
      } catch {}
    }
  }
  return out;
}

export class StepStore {
  private bytes = 0;
  private count = 0;
  private hits = 0;
  private misses = 0;

  /** `maxBytes` 0: no step cache (runs get none). */
  constructor(
    readonly dir: string,
    readonly maxBytes: number,
  ) {
    if (maxBytes > 0) {
      makeDirs(dir, 0o700);
      this.rescan();
    }
  }

  get enabled(): boolean {
    return this.maxBytes > 0;
  }

  /** What a run is given: the store, and whether to run every step anyway and store anew (dw run --no-cache). */
  forRun(refresh: boolean): { dir: string; refresh: boolean } | null {
    return this.enabled ? { dir: this.dir, refresh } : null;
  }

  /** After a run: its steps' outcomes counted, what it stored added, and the store kept within its bound. */
  noteRun(steps: StepTiming[], storedBytes: number): void {
    for (const s of steps) {
      if (s.cache === 'hit') this.hits++;
      else if (s.cache === 'miss') this.misses++;
    }
    if (storedBytes === 0) return;
    this.bytes += storedBytes;
    this.count += steps.filter((s) => s.cache === 'miss').length;
    if (this.bytes > this.maxBytes) this.evict();
  }

  private rescan(): Found[] {
    const found = entries(this.dir);
    this.bytes = found.reduce((sum, f) => sum + f.size, 0);
    this.count = found.length;
    return found;
  }

  /** Least recently used first (a hit touches its entry's mtime), down to 90% of the bound. */
  private evict(): void {
    const found = this.rescan().sort((a, b) => a.mtime - b.mtime);
    for (const f of found) {
      if (this.bytes <= this.maxBytes * 0.9) break;
      rmSync(f.path, { force: true });
      this.bytes -= f.size;
      this.count--;
    }
  }

  /** `recount`: from the folder itself (dw cache), else as runs reported it (cheap, for status and memory). */
  stats(recount = false): CacheStats {
    if (recount && this.enabled) this.rescan();
    return { dir: this.dir, max_bytes: this.maxBytes, bytes: this.bytes, entries: this.count, hits: this.hits, misses: this.misses };
  }

  /** Removes every entry (a run storing one right now may still add it); returns what was freed. */
  clear(): { entries: number; bytes: number } {
    const found = this.rescan();
    for (const f of found) rmSync(f.path, { force: true });
    this.rescan();
    return { entries: found.length, bytes: found.reduce((sum, f) => sum + f.size, 0) };
  }
}
