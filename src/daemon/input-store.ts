// Files that clients send by content (a dw over ssh, or of another user): kept by sha256 in the
// daemon's state folder (0700), bounded in size, least recently used out first. An entry is
// written under a temporary name and renamed into place only once its bytes hash to its name, so
// a half-sent or wrong file is never read. Entries a run is using are pinned until it ends.
import { chmodSync, readdirSync, rmSync, statSync } from 'node:fs';
import { open, rename, rm, utimes, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDirs } from '../protocol/dirs.js';
import { pidAlive } from '../protocol/pids.js';
import { DwError } from '../protocol/errors.js';
import { mb } from '../protocol/units.js';
import { sha256Of } from '../protocol/sha256.js';

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** An entry's name: its sha256, and the extension the client's file had (a pipeline may go by it). */
export function entryName(sha256: string, ext: string): string {
  return sha256 + (/^\.[A-Za-z0-9]{1,12}$/.test(ext) ? ext.toLowerCase() : '');
}

interface Entry {
  size: number;
  used: number;
}

/** An upload whose client sends nothing for this long is dropped (a stopped or vanished dw). */
export const UPLOAD_IDLE_MS = 30_000;

/** One file being received: pieces may come in any order; it is done when every byte has. */
export class Upload {
  private received = 0;
  private idle: NodeJS.Timeout | null = null;
  private holdsRoom = true;
  private readonly done: Promise<string>;
  private settle!: { resolve: (path: string) => void; reject: (err: Error) => void };
  private fh: Promise<FileHandle> | null = null;
  private finished = false;
  /** Failed (or dropped with its run): whatever completes later is not held for anyone. */
  dropped = false;

  constructor(
    private readonly store: InputStore,
    readonly name: string,
    readonly sha256: string,
    readonly size: number,
    private readonly temp: string,
  ) {
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => {});
    store.reserve(size);
    this.waitForMore();
    if (size === 0) void this.finish();
  }

  /** (Re)starts the idle deadline: a client that stops sending must not hold room in the store. */
  private waitForMore(): void {
    clearTimeout(this.idle ?? undefined);
    if (this.finished) return;
    this.idle = setTimeout(
      () =>
        this.fail(
          new DwError(
            'DW_ERR_TIMEOUT',
            `the client sent nothing of ${this.sha256} for ${UPLOAD_IDLE_MS / 1000} s (${this.received} of ${this.size} bytes): dropped`,
            { sha256: this.sha256 },
          ),
        ),
      UPLOAD_IDLE_MS,
    );
    this.idle.unref();
  }

  /** Resolves with the entry's path once stored and verified. */
  get stored(): Promise<string> {
    return this.done;
  }

  async put(offset: number, data: Buffer): Promise<number> {
    if (this.finished) throw new DwError('DW_ERR_PROTOCOL', `a piece of ${this.sha256} came after all its ${this.size} bytes had`);
    if (offset + data.length > this.size) {
      const err = new DwError(
        'DW_ERR_CONTENT_MISMATCH',
        `the piece at byte ${offset} of ${data.length} bytes runs past the ${this.size} bytes offered for ${this.sha256}`,
        { sha256: this.sha256, size: this.size },
      );
      this.fail(err);
      throw err;
    }
    this.waitForMore();
    this.fh ??= open(this.temp, 'wx+', 0o600); // + : read back to verify
    const fh = await this.fh;
    await fh.write(data, 0, data.length, offset);
    this.received += data.length;
    if (this.received >= this.size) await this.finish();
    return this.received;
  }

  private async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.idle ?? undefined);
    try {
      let got = EMPTY_SHA256;
      if (this.fh) {
        const fh = await this.fh;
        // Read back what was written: pieces written twice or overlapping would not hash right.
        got = await sha256Of(fh);
        await fh.close();
      } else {
        await (await open(this.temp, 'wx', 0o600)).close();
      }
      if (got !== this.sha256) {
        throw new DwError(
          'DW_ERR_CONTENT_MISMATCH',
          `the bytes sent for ${this.sha256} hash to ${got}, not to that: refused (did the file change while it was sent?)`,
          {
            sha256: this.sha256,
            got,
          },
        );
      }
      this.settle.resolve(await this.store.commit(this));
    } catch (err) {
      this.fail(err as Error);
    }
  }

  /** Gives back the room reserved for it (stored, or failed): once. */
  unreserve(): void {
    clearTimeout(this.idle ?? undefined);
    if (this.holdsRoom) this.store.reserve(-this.size);
    this.holdsRoom = false;
  }

  fail(err: Error): void {
    this.unreserve();
    this.finished = true;
    this.dropped = true;
    void this.fh?.then((fh) => fh.close()).catch(() => {});
    void rm(this.temp, { force: true });
    this.settle.reject(err);
  }

  get tempPath(): string {
    return this.temp;
  }
}

export class InputStore {
  private readonly entries = new Map<string, Entry>();
  private readonly pins = new Map<string, number>();
  private seq = 0;
  private total = 0;

  /** Opens (and makes, 0700) the store; entries left from before are kept, half-written ones removed. */
  constructor(
    readonly dir: string,
    readonly maxBytes: number,
  ) {
    makeDirs(dir, 0o700);
    chmodSync(dir, 0o700);
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      // Half-written uploads of daemons gone (another daemon of this user may share the folder).
      if (name.startsWith('.')) {
        const upload = /^\.upload-(\d+)-/.exec(name);
        if (upload && !pidAlive(Number(upload[1]))) rmSync(path, { force: true });
        continue;
      }
      try {
        const st = statSync(path);
        if (st.isFile()) this.track(name, st.size, st.mtimeMs);
      } catch {}
    }
  }

  get usedBytes(): number {
    return this.total;
  }

  pathOf(name: string): string {
    return join(this.dir, name);
  }

  /**
   * Whether the entry is here, with the size offered (a client that knows only a hash, not the
   * file, does not get to use someone else's): then it is pinned for the caller and counts as just used.
   */
  take(name: string, size: number): string | null {
    const e = this.entries.get(name);
    if (!e || e.size !== size) return null;
    this.pin(name);
    e.used = Date.now();
    // The last use survives a restart of the daemon in the file's mtime.
    void utimes(this.pathOf(name), new Date(), new Date()).catch(() => {});
    return this.pathOf(name);
  }

  /** Bytes of uploads in progress: room they will take. */
  private reserved = 0;

  reserve(bytes: number): void {
    this.reserved += bytes;
  }

  /**
   * A new upload of `size` bytes, refused at once when it could never fit, or when the entries
   * runs hold and the uploads in progress leave no room for it (idle entries are evicted first).
   */
  begin(name: string, sha256: string, size: number): Upload {
    if (size > this.maxBytes) {
      throw new DwError(
        'DW_ERR_INPUT_TOO_LARGE',
        `a file of ${mb(size)} does not fit in the daemon's input store of ${mb(this.maxBytes)} (dwd --input-store)`,
        { size, max: this.maxBytes },
      );
    }
    this.evict(size);
    const held = [...this.entries].filter(([n]) => this.pins.has(n)).reduce((sum, [, e]) => sum + e.size, 0);
    if (held + this.reserved + size > this.maxBytes) {
      throw new DwError(
        'DW_ERR_INPUT_TOO_LARGE',
        `the daemon's input store of ${mb(this.maxBytes)} (dwd --input-store) is taken by the files of runs in progress (${mb(held + this.reserved)}); a file of ${mb(size)} does not fit now: try again when they end`,
        { size, max: this.maxBytes, held: held + this.reserved },
      );
    }
    return new Upload(this, name, sha256, size, join(this.dir, `.upload-${process.pid}-${++this.seq}`));
  }

  /** Moves a verified upload into place, pinned for its run, and makes room for it. */
  async commit(u: Upload): Promise<string> {
    const path = this.pathOf(u.name);
    await rename(u.tempPath, path);
    u.unreserve();
    this.track(u.name, u.size, Date.now());
    // An upload dropped while it was being renamed into place is stored, but held by no run.
    if (!u.dropped) this.pin(u.name);
    this.evict();
    return path;
  }

  pin(name: string): void {
    this.pins.set(name, (this.pins.get(name) ?? 0) + 1);
  }

  unpin(name: string): void {
    const n = (this.pins.get(name) ?? 0) - 1;
    if (n > 0) this.pins.set(name, n);
    else this.pins.delete(name);
    this.evict();
  }

  private track(name: string, size: number, used: number): void {
    const old = this.entries.get(name);
    if (old) this.total -= old.size;
    this.entries.set(name, { size, used });
    this.total += size;
  }

  /**
   * Least recently used first, never a pinned one, until the entries, the uploads in progress and
   * `room` more fit: over its bound only while runs hold more.
   */
  private evict(room = 0): void {
    const over = () => this.total + this.reserved + room > this.maxBytes;
    if (!over()) return;
    const idle = [...this.entries].filter(([name]) => !this.pins.has(name)).sort((a, b) => a[1].used - b[1].used);
    for (const [name, e] of idle) {
      if (!over()) break;
      this.entries.delete(name);
      this.total -= e.size;
      rmSync(this.pathOf(name), { force: true });
    }
  }
}
