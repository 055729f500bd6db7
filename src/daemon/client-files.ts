// A run's files by content: each path the loader needs is asked of the client (a `need` event),
// which answers with its sha256 and size (`offer`); bytes travel (`put`) only when the input store
// lacks them, so a second run of the same scan sends nothing. The entries a run uses stay pinned
// in the store until it ends.
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { DwError } from '../protocol/errors.js';
import type { OfferRequest, PutRequest, RequestId } from '../protocol/messages.js';
import { mb } from '../protocol/units.js';
import { TooLarge } from '../media/read.js';
import type { FileSource } from '../workflow/source.js';
import { entryName, type InputStore, type Upload } from './input-store.js';
import type { Connection } from './server.js';

interface Asked {
  what: string;
  ext: string;
  maxBytes: number;
  resolve: (path: string) => void;
  reject: (err: Error) => void;
}

export class ClientFiles implements FileSource {
  readonly where = "the client's host";
  private readonly byPath = new Map<string, Promise<string>>();
  private readonly asked = new Map<string, Asked>();
  /** Uploads in progress, by sha256 (a file's pieces name it so). */
  private readonly uploads = new Map<string, Upload>();
  /** Entries pinned for this run, once per pin. */
  private readonly pinned: string[] = [];
  /** Bytes of this run's files so far: together they must fit the store. */
  private total = 0;
  /** Past release(): an upload that completes now is not this run's to hold. */
  private released = false;

  constructor(
    private readonly conn: Connection,
    private readonly request: RequestId,
    private readonly store: InputStore,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener('abort', () => this.failAll(signal.reason as Error), { once: true });
  }

  async read(path: string, maxBytes: number): Promise<Buffer> {
    return readFile(await this.fetch(path, 'workflow', '', maxBytes));
  }

  provide(path: string, what: string, ext?: string): Promise<string> {
    return this.fetch(path, what, ext ?? extname(path), Number.POSITIVE_INFINITY);
  }

  private fetch(path: string, what: string, ext: string, maxBytes: number): Promise<string> {
    let p = this.byPath.get(path);
    if (!p) {
      p = new Promise<string>((resolve, reject) => {
        if (this.signal.aborted) return reject(this.signal.reason);
        this.asked.set(path, { what, ext, maxBytes, resolve, reject });
        void this.conn.event(this.request, { kind: 'need', path, what });
      }).then((stored) => {
        this.clientPaths.set(stored, path);
        return stored;
      });
      this.byPath.set(path, p);
    }
    return p;
  }

  /** Copies in the store, by the client's paths: what errors should name instead. */
  private readonly clientPaths = new Map<string, string>();

  /** An error that names copies in the store, naming the client's files instead. */
  named(err: unknown): unknown {
    if (!(err instanceof DwError) || this.clientPaths.size === 0) return err;
    let message = err.message;
    for (const [stored, path] of this.clientPaths) message = message.replaceAll(stored, path);
    return message === err.message ? err : new DwError(err.code, message, err.details);
  }

  /** The client's answer to a need: whether the store has the bytes already. */
  offered(req: OfferRequest): { have: boolean } {
    const a = this.asked.get(req.path);
    if (!a) throw new DwError('DW_ERR_PROTOCOL', `no file is needed at ${req.path} (or it was offered already)`, { path: req.path });
    this.asked.delete(req.path);
    try {
      if (req.error !== undefined) {
        throw new DwError('DW_ERR_FILE_NOT_FOUND', `${a.what} ${req.path} cannot be read on ${this.where} (${req.error})`, {
          path: req.path,
          errno: req.error,
        });
      }
      const size = req.size!;
      if (size > a.maxBytes) throw new TooLarge(size, a.maxBytes);
      this.total += size;
      if (this.total > this.store.maxBytes) {
        throw new DwError(
          'DW_ERR_INPUT_TOO_LARGE',
          `the run's files come to ${mb(this.total)} with ${req.path}, more than the daemon's input store of ${mb(this.store.maxBytes)} (dwd --input-store)`,
          { total: this.total, max: this.store.maxBytes },
        );
      }
      const name = entryName(req.sha256!, a.ext);
      const here = this.store.take(name, size);
      if (here !== null) {
        this.pinned.push(name);
        a.resolve(here);
        return { have: true };
      }
      let upload = this.uploads.get(req.sha256!);
      if (!upload || upload.name !== name) {
        upload = this.store.begin(name, req.sha256!, size);
        this.uploads.set(req.sha256!, upload);
      }
      upload.stored.then(
        (path) => {
          if (this.released) return this.store.unpin(name);
          this.pinned.push(name);
          a.resolve(path);
        },
        (err: Error) => a.reject(err),
      );
      return { have: false };
    } catch (err) {
      a.reject(err as Error);
      throw err;
    }
  }

  async put(req: PutRequest): Promise<{ received: number }> {
    const upload = this.uploads.get(req.sha256);
    if (!upload) throw new DwError('DW_ERR_PROTOCOL', `no upload of ${req.sha256} is in progress for this run`, { sha256: req.sha256 });
    if (req.error !== undefined) {
      this.uploads.delete(req.sha256);
      const err = new DwError('DW_ERR_FILE_NOT_FOUND', `the client could not send all of a file it offered: ${req.error}`, {
        sha256: req.sha256,
      });
      upload.fail(err);
      throw err;
    }
    const received = await upload.put(req.offset, Buffer.from(req.data_base64 ?? '', 'base64'));
    if (received >= upload.size) this.uploads.delete(req.sha256);
    return { received };
  }

  private failAll(err: Error): void {
    for (const a of this.asked.values()) a.reject(err);
    this.asked.clear();
    for (const u of this.uploads.values()) u.fail(err);
    this.uploads.clear();
  }

  /** At the run's end: unpins its entries and drops what is still in flight. */
  release(): void {
    this.released = true;
    this.failAll(new DwError('DW_ERR_CANCELLED', 'the run ended'));
    for (const name of this.pinned.splice(0)) this.store.unpin(name);
  }
}
