// Saved outputs are written by the CLI, as the invoking user, under --output-dir. Their bytes
// arrive in pieces (`output` events) ahead of the run's result, go to a hidden temporary file
// each, and only a successful result renames them into place: an interrupted or failed run never
// leaves half a file.
import { closeSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { makeDirs } from '../protocol/dirs.js';
import { DwError } from '../protocol/errors.js';
import type { RunOutput } from '../protocol/messages.js';

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

export class OutputFiles {
  private readonly dir: string;
  private readonly partial = new Map<number, Partial>();
  /** The first write error; later pieces are dropped and finish() reports it. */
  private failure: DwError | null = null;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  /** Appends a piece of output `index`. Synchronous, so pieces land in the order they came. */
  piece(index: number, data_base64: string): void {
    if (this.failure) return;
    if (!Number.isSafeInteger(index) || index < 0 || typeof data_base64 !== 'string') {
      this.failure = new DwError('DW_ERR_PROTOCOL', 'dwd sent an output piece that is not one');
      return;
    }
    const tmp = join(this.dir, `.dw-output-${process.pid}-${index}.tmp`);
    try {
      let p = this.partial.get(index);
      if (!p) {
        makeDirs(this.dir);
        p = { tmp, fd: openSync(tmp, 'w'), bytes: 0 };
        this.partial.set(index, p);
      }
      const data = Buffer.from(data_base64, 'base64');
      writeSync(p.fd, data);
      p.bytes += data.length;
    } catch (err) {
      this.failure = new DwError('DW_ERR_OUTPUT', `cannot write under ${this.dir}: ${(err as Error).message}`, { path: this.dir });
    }
  }

  /** Puts each output in place under its name, once it has all its bytes; then nothing is left over. */
  finish(outputs: RunOutput[]): Written[] {
    try {
      if (this.failure) throw this.failure;
      return outputs.map((out, index) => {
        // The daemon already restricts names to bare file names; this keeps a hostile daemon from choosing a folder.
        if (basename(out.name) !== out.name || out.name === '.' || out.name === '..') throw new DwError('DW_ERR_OUTPUT', `refusing output name "${out.name}": not a plain file name`);
        const target = resolve(this.dir, out.name);
        // An empty output has no pieces: its file is made here.
        if (!this.partial.has(index)) this.piece(index, '');
        const p = this.partial.get(index);
        if (this.failure) throw this.failure;
        if (!p || p.bytes !== out.bytes) throw new DwError('DW_ERR_PROTOCOL', `output ${out.name}: ${p?.bytes ?? 0} bytes arrived, the result says ${out.bytes}`, { path: target });
        closeSync(p.fd);
        this.partial.delete(index);
        try {
          renameSync(p.tmp, target);
        } catch (err) {
          unlinkSync(p.tmp);
          throw new DwError('DW_ERR_OUTPUT', `cannot write ${target}: ${(err as Error).message}`, { path: target });
        }
        return { step: out.step, path: target, content_type: out.content_type, bytes: out.bytes };
      });
    } finally {
      this.discard();
    }
  }

  /** Removes whatever did not make it into place (a failed or cancelled run, or an error above). */
  discard(): void {
    for (const p of this.partial.values()) {
      try {
        closeSync(p.fd);
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
