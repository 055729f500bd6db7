// The client's half of files by content: the daemon asks for a path (a `need` event), dw answers
// with the file's sha256 and size (`offer`) and sends its bytes (`put`, in pieces, a few in flight)
// only when the daemon's store lacks them. Only regular files are read, opened without blocking:
// a named pipe given as an input must not hang dw. And only files the user named are sent: a
// daemon that asks for anything else (one through ssh, or another user's, that is not what it
// claims) gets a refusal, not the file.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { RunEvent } from '../protocol/messages.js';
import { mb } from '../protocol/units.js';
import { sha256Of } from '../protocol/sha256.js';
import type { Client } from './client.js';

/** Raw bytes per piece at most (1.4 MB as base64), less where the daemon reads smaller frames. */
const PIECE = 1024 * 1024;
/** Pieces in flight: enough to keep an ssh pipe busy, few enough that dw's memory stays flat. */
const WINDOW = 4;
/** Room in a put frame for everything around its data. */
const PUT_OVERHEAD = 512;

/** The raw bytes of a piece whose base64 fits a frame of `maxFrame`. */
export const pieceBytes = (maxFrame: number) => Math.max(1, Math.min(PIECE, Math.floor((maxFrame - PUT_OVERHEAD) / 4) * 3));
/** Files from this size on are announced as they are sent. */
const ANNOUNCE = 1024 * 1024;

async function openRegular(path: string): Promise<{ fh: FileHandle; size: number }> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw Object.assign(new Error('not a regular file'), { code: st.isDirectory() ? 'EISDIR' : 'not a regular file' });
  }
  return { fh, size: st.size };
}

async function sendPieces(client: Client, target: number, sha256: string, fh: FileHandle, size: number): Promise<void> {
  const inFlight = new Set<Promise<unknown>>();
  const piece = pieceBytes(client.hello.max_request_bytes);
  for (let offset = 0; offset < size; offset += piece) {
    const buf = Buffer.alloc(Math.min(piece, size - offset));
    const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
    // Cut short since it was hashed: the daemon would wait for bytes that will not come.
    if (bytesRead < buf.length)
      throw new Error(`${size - offset - bytesRead} bytes fewer than when it was hashed: it changed while being sent`);
    const put = client.request('put', { target, sha256, offset, data_base64: buf.toString('base64') });
    inFlight.add(put);
    void put.finally(() => inFlight.delete(put)).catch(() => {});
    if (inFlight.size >= WINDOW) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}

/** What a run sent by content: the files the daemon asked for, and the bytes of those it lacked. */
export interface Sent {
  files: number;
  uploaded_files: number;
  uploaded_bytes: number;
}

/** A workflow file is at most this big (the daemon's MAX_WORKFLOW_BYTES): larger files are not read for names. */
const WORKFLOW_BYTES = 1024 * 1024;

/**
 * The files dw sends: the workflow, the --arg values (as paths from where dw runs), and every
 * string in a workflow file it has sent, as a path from that file's folder (sub-workflows, plugin
 * modules, inputs, variable defaults: the daemon resolves them the same way).
 */
export class Named {
  private readonly paths = new Set<string>();

  constructor(workflow: string, args: Record<string, string>, cwd: string) {
    this.paths.add(resolve(cwd, workflow));
    for (const v of Object.values(args)) this.paths.add(resolve(cwd, v));
  }

  allows(path: string): boolean {
    return this.paths.has(path);
  }

  /** A file being sent: if it is a workflow (JSON), what it names may be asked for next. */
  learn(path: string, bytes: Buffer): void {
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8').replace(/^\uFEFF/, ''));
    } catch {
      return;
    }
    const stack = [json];
    while (stack.length > 0) {
      const v = stack.pop();
      if (typeof v === 'string') this.paths.add(resolve(dirname(path), v));
      else if (v && typeof v === 'object') stack.push(...Object.values(v));
    }
  }
}

/** Answers one need of request `target`; failures travel to the daemon, which fails the run with them. */
async function answer(client: Client, target: number, path: string, note: (line: string) => void, sent: Sent, named: Named): Promise<void> {
  if (!named.allows(path)) {
    await client.request('offer', { target, path, error: 'not a file this workflow or its --arg values name: dw does not send it' });
    return;
  }
  let file: { fh: FileHandle; size: number };
  try {
    file = await openRegular(path);
  } catch (err) {
    await client.request('offer', { target, path, error: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
    return;
  }
  try {
    let sha256: string;
    try {
      // A file small enough to be a workflow is read once: hashed, and read for the names in it.
      if (file.size <= WORKFLOW_BYTES) {
        const bytes = Buffer.alloc(file.size);
        await file.fh.read(bytes, 0, file.size, 0);
        sha256 = createHash('sha256').update(bytes).digest('hex');
        named.learn(path, bytes);
      } else {
        sha256 = await sha256Of(file.fh, file.size);
      }
    } catch (err) {
      await client.request('offer', { target, path, error: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
      return;
    }
    const { have } = await client.request('offer', { target, path, sha256, size: file.size });
    sent.files++;
    if (have) return;
    if (file.size >= ANNOUNCE) note(`dw: sending ${basename(path)} (${mb(file.size)}) to dwd`);
    try {
      await sendPieces(client, target, sha256, file.fh, file.size);
    } catch (err) {
      // Said to the daemon, which fails the run with it (a put it refused has failed it already).
      await client.request('put', { target, sha256, offset: 0, error: `${path}: ${(err as Error).message}` }).catch(() => {});
      throw err;
    }
    sent.uploaded_files++;
    sent.uploaded_bytes += file.size;
  } finally {
    await file.fh.close();
  }
}

/**
 * An onEvent that answers the daemon's `need` events for request `target` and passes every other
 * event on. A failed answer is left to the daemon: the run fails there, with its reason.
 */
export function sendingFiles(
  client: Client,
  target: () => number,
  note: (line: string) => void,
  named: Named,
  next: (e: RunEvent) => void = () => {},
  sent: Sent = { files: 0, uploaded_files: 0, uploaded_bytes: 0 },
): (e: RunEvent) => void {
  return (e) => {
    if (e.kind !== 'need') return next(e);
    answer(client, target(), e.path, note, sent, named).catch(() => {});
  };
}
