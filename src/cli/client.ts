// A connection to dwd: framing, the hello exchange, and requests correlated by id.
import { createConnection, type Socket } from 'node:net';
import { DwError } from '../protocol/errors.js';
import { encodeFrame, FrameReader } from '../protocol/framing.js';
import { isServerFrame, type HelloResult, type Request, type RequestType, type ResultMap, type RunEvent, type ServerFrame } from '../protocol/messages.js';
import { PACKAGE_VERSION, PROTOCOL_VERSION } from '../protocol/version.js';

type Body<T extends RequestType> = Omit<Extract<Request, { type: T }>, 'id' | 'type'>;

interface Waiter {
  onEvent?: (e: RunEvent) => void;
  resolve: (r: unknown) => void;
  reject: (e: DwError) => void;
}

export class Client {
  private seq = 0;
  private readonly waiters = new Map<number, Waiter>();
  private closedError: DwError | null = null;
  hello!: HelloResult;

  private constructor(private readonly socket: Socket) {
    const reader = new FrameReader(
      (frame) => this.onFrame(frame),
      (err) => this.failAll(new DwError('DW_ERR_PROTOCOL', `bad frame from dwd: ${err.message}`)),
    );
    socket.on('data', (chunk) => reader.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.failAll(new DwError('DW_ERR_DAEMON_UNREACHABLE', 'dwd closed the connection before answering (did it stop or crash? see `dw logs` or its journal)')));
  }

  /** Connects without a hello; rejects with the socket error code (ENOENT, ECONNREFUSED…). */
  static connect(path: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(path);
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new Client(socket));
      });
      socket.once('error', reject);
    });
  }

  /** The version handshake; a mismatch rejects with DW_ERR_VERSION_MISMATCH and the daemon's facts. */
  async handshake(): Promise<HelloResult> {
    this.hello = await this.request('hello', { protocol: PROTOCOL_VERSION, version: PACKAGE_VERSION, client: 'dw' });
    return this.hello;
  }

  /** Sends a request; resolves with its result frame, rejects with its error frame. Returns the id too. */
  send<T extends RequestType>(type: T, body: Body<T>, onEvent?: (e: RunEvent) => void): { id: number; done: Promise<ResultMap[T]> } {
    const id = ++this.seq;
    const done = new Promise<ResultMap[T]>((resolve, reject) => {
      if (this.closedError) return reject(this.closedError);
      this.waiters.set(id, { onEvent, resolve: resolve as (r: unknown) => void, reject });
      this.socket.write(encodeFrame({ id, type, ...body }));
    });
    return { id, done };
  }

  request<T extends RequestType>(type: T, body: Body<T>, onEvent?: (e: RunEvent) => void): Promise<ResultMap[T]> {
    return this.send(type, body, onEvent).done;
  }

  /** Resolves when dwd closes the connection (after `stop`, once it has shut down). */
  closed(): Promise<void> {
    return new Promise((resolve) => (this.socket.destroyed ? resolve() : this.socket.once('close', () => resolve())));
  }

  close(): void {
    this.socket.destroy();
  }

  private onFrame(frame: unknown): void {
    if (!isServerFrame(frame)) return this.failAll(new DwError('DW_ERR_PROTOCOL', 'unexpected frame from dwd'));
    const f = frame as ServerFrame;
    if (f.id === null) {
      if (f.type === 'error') this.failAll(DwError.fromPayload(f.error));
      return;
    }
    const w = this.waiters.get(Number(f.id));
    if (!w) return;
    if (f.type === 'event') return w.onEvent?.(f.event);
    this.waiters.delete(Number(f.id));
    if (f.type === 'result') w.resolve(f.result);
    else w.reject(DwError.fromPayload(f.error));
  }

  private failAll(err: DwError): void {
    this.closedError ??= err;
    for (const w of this.waiters.values()) w.reject(err);
    this.waiters.clear();
  }
}
