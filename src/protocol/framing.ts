// Newline-delimited JSON with a hard frame limit on both sides. One format for everything on the
// socket: a frame is one JSON object on one line; binary payloads travel base64 inside it.
import { StringDecoder } from 'node:string_decoder';
import { DwError } from './errors.js';

export const DEFAULT_MAX_FRAME = 64 * 1024 * 1024;

export function encodeFrame(msg: object, maxFrame = DEFAULT_MAX_FRAME): string {
  const line = JSON.stringify(msg);
  if (line.length + 1 > maxFrame) {
    throw new DwError('DW_ERR_PROTOCOL', `frame of ${line.length} bytes exceeds the ${maxFrame}-byte limit`, {
      size: line.length,
      max: maxFrame,
    });
  }
  return line + '\n';
}

export type FrameHandler = (frame: unknown) => void;
export type FrameErrorHandler = (err: DwError) => void;

/**
 * Splits a byte stream into JSON frames. An oversized or malformed frame is reported once and the
 * reader stops: after garbage the stream position is meaningless, so the owner closes the peer.
 */
export class FrameReader {
  private readonly decoder = new StringDecoder('utf8');
  /** Text of the frame in progress, chunk by chunk: only new text is ever scanned for a newline. */
  private pending: string[] = [];
  private pendingLength = 0;
  private failed = false;

  constructor(
    private readonly onFrame: FrameHandler,
    private readonly onError: FrameErrorHandler,
    private readonly maxFrame = DEFAULT_MAX_FRAME,
  ) {}

  push(chunk: Buffer | string): void {
    if (this.failed) return;
    const text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    let start = 0;
    let nl: number;
    while ((nl = text.indexOf('\n', start)) !== -1) {
      const piece = text.slice(start, nl);
      start = nl + 1;
      const line = this.pending.length > 0 ? this.pending.join('') + piece : piece;
      this.pending = [];
      this.pendingLength = 0;
      if (line.length > this.maxFrame) return this.tooLarge();
      this.handleLine(line);
      if (this.failed) return;
    }
    const rest = text.slice(start);
    if (rest === '') return;
    this.pending.push(rest);
    this.pendingLength += rest.length;
    if (this.pendingLength > this.maxFrame) this.tooLarge();
  }

  private handleLine(line: string): void {
    if (line.trim() === '') return;
    let frame: unknown;
    try {
      frame = JSON.parse(line);
    } catch (err) {
      return this.fail(new DwError('DW_ERR_PROTOCOL', `malformed frame: ${(err as Error).message}`, { excerpt: line.slice(0, 80) }));
    }
    this.onFrame(frame);
  }

  private tooLarge(): void {
    this.fail(new DwError('DW_ERR_PROTOCOL', `frame exceeds the ${this.maxFrame}-byte limit`, { max: this.maxFrame }));
  }

  /** Characters of an unfinished frame held, waiting for the rest of it. */
  get buffered(): number {
    return this.pendingLength;
  }

  /** Stops the reader: frames already buffered are dropped, later chunks ignored. */
  stop(): void {
    this.failed = true;
    this.pending = [];
    this.pendingLength = 0;
  }

  private fail(err: DwError): void {
    this.stop();
    this.onError(err);
  }
}
