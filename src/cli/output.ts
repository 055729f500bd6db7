// Saved outputs are written by the CLI, as the invoking user, under --output-dir. Their bytes
// arrive in pieces (`output` events) ahead of the run's result, go to a hidden temporary file
// each, and only a successful result whose byte counts all match renames them into place: an
// interrupted or failed run never leaves half a file, nor replaces one of yours.
import { closeSync, fstatSync, linkSync, lstatSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join, resolve } from 'node:path';
import { makeDirs } from '../protocol/dirs.js';
import { DwError } from '../protocol/errors.js';
import type { RunOutput } from '../protocol/messages.js';
import { uid } from '../protocol/paths.js';
import { pidAlive } from '../protocol/pids.js';

interface Partial {
  tmp: string;
  fd: number;
  bytes: number;
}

export interface Written {
  step: string;
  path: string;
  content_type: string;
  bytes: number;
}

/** The bytes a base64 string of this length and padding decodes to, when every character is valid. */
function decodedLength(b64: string): number {
  const pad = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  return b64.length % 4 === 0 ? (b64.length / 4) * 3 - pad : -1;
}

/** A temporary output's name: its writer's pid, a random tag, the output's index (.old: a file it replaces, kept aside). */
const TEMPORARY = /^\.dw-output-(\d+)-[0-9a-f]{12}-\d+\.tmp(\.old)?$/;

/**
 * Removes the temporary outputs that a dw killed with -9 left behind (it had no chance to): those
 * of pids no longer running, owned by us. Another dw writing into the folder right now is alive.
 */
function sweepStale(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(TEMPORARY.exec(name)?.[1]);
    if (!pid || pid === process.pid || pidAlive(pid)) continue;
    try {
      const path = join(dir, name);
      if (lstatSync(path).uid === uid()) unlinkSync(path);
    } catch {
      // gone already, or not ours to remove
    }
  }
}

const lazyRequire = createRequire(import.meta.url);

export class OutputFiles {
  private readonly dir: string;
  private readonly partial = new Map<number, Partial>();
  /** The first write error; later pieces are dropped and finish() reports it. */
  private failure: DwError | null = null;
  /**
   * Unguessable, so nobody can plant a link where a temporary file will be (and opened with wx).
   * Made at the first output: importing node:crypto at start cost every dw start some 5 ms.
   */
  private tagValue = '';
  private get tag(): string {
    this.tagValue ||= `${process.pid}-${(lazyRequire('node:crypto') as typeof import('node:crypto')).randomBytes(6).toString('hex')}`;
    return this.tagValue;
  }

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  /** Appends a piece of output `index`. Synchronous, so pieces land in the order they came. */
  piece(index: number, data_base64: string): void {
    if (this.failure) return;
    const data = typeof data_base64 === 'string' ? Buffer.from(data_base64, 'base64') : null;
    // Buffer.from skips characters that are not base64; a piece with any is not one dwd sends.
    if (!Number.isSafeInteger(index) || index < 0 || data === null || data.length !== decodedLength(data_base64)) {
      this.failure = new DwError('DW_ERR_PROTOCOL', 'dwd sent an output piece that is not one');
      return;
    }
    try {
      let p = this.partial.get(index);
      if (!p) {
        makeDirs(this.dir);
        if (this.partial.size === 0) sweepStale(this.dir);
        const tmp = join(this.dir, `.dw-output-${this.tag}-${index}.tmp`);
        p = { tmp, fd: openSync(tmp, 'wx'), bytes: 0 };
        this.partial.set(index, p);
      }
      // writeSync may write less than asked (a full disk): what it returns is what is on disk.
      for (let at = 0; at < data.length; ) {
        const n = writeSync(p.fd, data, at);
        if (n <= 0) throw new Error('no space left to write');
        at += n;
        p.bytes += n;
      }
    } catch (err) {
      this.failure = new DwError('DW_ERR_OUTPUT', `cannot write under ${this.dir}: ${(err as Error).message}`, { path: this.dir });
    }
  }

  /**
   * Puts the outputs in place under their names once every one has all its bytes: all are checked
   * before any is renamed, so a failed run replaces none of your files. Then nothing is left over.
   */
  finish(outputs: RunOutput[]): Written[] {
    try {
      if (this.failure) throw this.failure;
      const names = new Set<string>();
      const ready = outputs.map((out, index) => {
        // The daemon already restricts names to bare, distinct file names; this keeps a hostile one from choosing a folder.
        if (basename(out.name) !== out.name || out.name === '.' || out.name === '..' || names.has(out.name))
          throw new DwError('DW_ERR_OUTPUT', `refusing output name "${out.name}": not a plain, distinct file name`);
        names.add(out.name);
        // An empty output has no pieces: its file is made here.
        if (!this.partial.has(index)) this.piece(index, '');
        if (this.failure) throw this.failure;
        const p = this.partial.get(index)!;
        const size = fstatSync(p.fd).size;
        if (p.bytes !== out.bytes || size !== out.bytes)
          throw new DwError('DW_ERR_PROTOCOL', `output ${out.name}: ${size} bytes arrived, the result says ${out.bytes}`, {
            name: out.name,
          });
        return { out, p, target: resolve(this.dir, out.name) };
      });
      for (const { p } of ready) {
        closeSync(p.fd);
        p.fd = -1;
      }
      // A file it replaces is kept (hard-linked aside) until every output is in place: a rename that
      // fails part way (a folder in the way) puts back the files the earlier ones replaced.
      const placed: Array<{ target: string; kept: string | null }> = [];
      let current = this.dir;
      try {
        for (const { p, target } of ready) {
          current = target;
          let kept: string | null = `${p.tmp}.old`;
          try {
            linkSync(target, kept);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
            kept = null;
          }
          placed.push({ target, kept });
          renameSync(p.tmp, target);
        }
      } catch (err) {
        for (const { target, kept } of placed.reverse()) {
          try {
            if (kept) renameSync(kept, target);
            else unlinkSync(target);
          } catch {}
          try {
            // rename leaves both names when they are one file already (the rename that failed).
            if (kept) unlinkSync(kept);
          } catch {}
        }
        throw new DwError('DW_ERR_OUTPUT', `cannot write ${current}: ${(err as Error).message}; none of your files was replaced`, {
          path: current,
        });
      }
      for (const { kept } of placed) {
        try {
          if (kept) unlinkSync(kept);
        } catch {
          // left for the next dw's sweep: the outputs are in place
        }
      }
      this.partial.clear();
      return ready.map(({ out, target }) => ({ step: out.step, path: target, content_type: out.content_type, bytes: out.bytes }));
    } finally {
      this.discard();
    }
  }

  /** Removes whatever did not make it into place (a failed, cancelled or killed run, or an error above). */
  discard(): void {
    for (const p of this.partial.values()) {
      try {
        if (p.fd >= 0) closeSync(p.fd);
      } catch {
        // already closed
      }
      try {
        unlinkSync(p.tmp);
      } catch {
        // already gone
      }
    }
    this.partial.clear();
  }
}
