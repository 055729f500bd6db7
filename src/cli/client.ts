// A connection to dwd: framing, the hello exchange, and requests correlated by id. dw never waits
// for ever: the connection and every request fail with DW_ERR_DAEMON_UNREACHABLE when dwd stays
// silent longer than the connect timeout (it sends a heartbeat every second while it works on a
// request), and a request may have a deadline of its own.
import { createConnection } from 'node:net';
import type { Duplex } from 'node:stream';
import { DwError } from '../protocol/errors.js';
import { encodeFrame, FrameReader } from '../protocol/framing.js';
import {
  isServerFrame,
  type HelloResult,
  type Request,
  type RequestType,
  type ResultMap,
  type RunEvent,
  type ServerFrame,
} from '../protocol/messages.js';
import { lockPathFor } from '../protocol/paths.js';
import { readPidFile } from '../protocol/pids.js';
import { PACKAGE_VERSION, PROTOCOL_VERSION } from '../protocol/version.js';

type Body<T extends RequestType> = Omit<Extract<Request, { type: T }>, 'id' | 'type'>;

interface Waiter {
  type: RequestType;
  onEvent?: (e: RunEvent) => void;
  resolve: (r: unknown) => void;
  reject: (e: DwError) => void;
  deadline?: NodeJS.Timeout;
}

export interface SendOptions {
  /** Fail the request (not the connection) if its answer has not come within this long. */
  deadlineMs?: number;
}

export class Client {
  private seq = 0;
  private readonly waiters = new Map<number, Waiter>();
  private closedError: DwError | null = null;
  private lastHeard = Date.now();
  /** Through ssh, silence before the first frame is ssh's setup, bounded by the hello's deadline, not a stuck daemon. */
  private heard = false;
  private watchdog: NodeJS.Timeout | null = null;
  hello!: HelloResult;

  private constructor(
    private readonly socket: Duplex,
    /** The socket's path, or for a daemon reached through ssh its URL. */
    readonly path: string,
    /** How long dwd may stay silent while a request waits for it. */
    private readonly silenceMs: number,
    /** Reached through a pipe (ssh), not a socket of this host: no pid file of ours tells its pid. */
    readonly remote = false,
    /** Why the pipe closed, when its far end says (ssh's own message). */
    private readonly closedWhy: () => string = () => '',
  ) {
    const reader = new FrameReader(
      (frame) => this.onFrame(frame),
      (err) => this.failAll(new DwError('DW_ERR_PROTOCOL', `bad frame from dwd: ${err.message}`)),
    );
    socket.on('data', (chunk) => reader.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      const why = this.closedWhy();
      this.failAll(
        new DwError(
          'DW_ERR_DAEMON_UNREACHABLE',
          why
            ? `the connection to dwd on ${this.path} closed before it answered: ${why}`
            : 'dwd closed the connection before answering (did it stop or crash? see `dw logs` or its journal)',
        ),
      );
    });
  }

  /** A client over a pipe to a daemon elsewhere (ssh … dw dial-stdio); no hello yet. */
  static over(stream: Duplex, label: string, silenceMs: number, closedWhy: () => string): Client {
    return new Client(stream, label, silenceMs, true, closedWhy);
  }

  /** Connects without a hello; rejects with the socket error code (ENOENT, ECONNREFUSED…), or ETIMEDOUT. */
  static connect(path: string, timeoutMs: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(Object.assign(new Error(`connecting to ${path} took longer than ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeListener('error', reject);
        resolve(new Client(socket, path, timeoutMs));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** The daemon's pid: from its hello, else from the pid file beside its socket. */
  get daemonPid(): number | null {
    return this.hello?.pid ?? (this.remote ? null : (readPidFile(lockPathFor(this.path))?.pid ?? null));
  }

  /** The version handshake; a mismatch rejects with DW_ERR_VERSION_MISMATCH and the daemon's facts. */
  async handshake(deadlineMs?: number): Promise<HelloResult> {
    this.hello = await this.request(
      'hello',
      { protocol: PROTOCOL_VERSION, version: PACKAGE_VERSION, client: 'dw' },
      undefined,
      deadlineMs === undefined ? {} : { deadlineMs },
    );
    return this.hello;
  }

  /** Sends a request; resolves with its result frame, rejects with its error frame. Returns the id too. */
  send<T extends RequestType>(
    type: T,
    body: Body<T>,
    onEvent?: (e: RunEvent) => void,
    opts: SendOptions = {},
  ): { id: number; done: Promise<ResultMap[T]> } {
    const id = ++this.seq;
    const done = new Promise<ResultMap[T]>((resolve, reject) => {
      if (this.closedError) return reject(this.closedError);
      const w: Waiter = { type, onEvent, resolve: resolve as (r: unknown) => void, reject };
      if (opts.deadlineMs !== undefined) w.deadline = setTimeout(() => this.expire(id, opts.deadlineMs!), opts.deadlineMs);
      if (this.waiters.size === 0) this.lastHeard = Date.now();
      this.waiters.set(id, w);
      this.watch();
      this.socket.write(encodeFrame({ id, type, ...body }));
    });
    return { id, done };
  }

  request<T extends RequestType>(type: T, body: Body<T>, onEvent?: (e: RunEvent) => void, opts?: SendOptions): Promise<ResultMap[T]> {
    return this.send(type, body, onEvent, opts).done;
  }

  /** Moves a request's deadline (a run's starts when the daemon starts it, not while it is queued). */
  setDeadline(id: number, ms: number): void {
    const w = this.waiters.get(id);
    if (!w) return;
    clearTimeout(w.deadline);
    w.deadline = setTimeout(() => this.expire(id, ms), ms);
  }

  /** Resolves when dwd closes the connection (after `stop`, once it has shut down). */
  closed(): Promise<void> {
    return new Promise((resolve) => (this.socket.destroyed ? resolve() : this.socket.once('close', () => resolve())));
  }

  close(): void {
    this.stopWatching();
    this.socket.destroy();
  }

  private who(): string {
    const pid = this.daemonPid;
    return `dwd${pid ? ` (pid ${pid}${this.remote && this.hello ? ` on ${this.hello.host}` : ''})` : ''} on ${this.path}`;
  }

  private expire(id: number, ms: number): void {
    const w = this.waiters.get(id);
    if (!w) return;
    this.settle(id);
    // Through ssh, nothing at all: ssh connected, but the dw on the far side never spoke.
    const silent = this.remote && !this.heard;
    const why = silent ? this.closedWhy() : '';
    w.reject(
      new DwError(
        'DW_ERR_DAEMON_UNREACHABLE',
        silent
          ? `nothing came back through ssh from ${this.path} within ${(ms / 1000).toFixed(0)} s: the dw on the far side (DW_REMOTE_DW) does not answer${why ? ` (ssh said: ${why})` : ''}`
          : `${this.who()} did not answer the ${w.type} request within ${(ms / 1000).toFixed(0)} s; see \`dw logs\` (or its journal)`,
        { pid: this.daemonPid, socket: this.path, request: w.type },
      ),
    );
  }

  /** Checks, while requests wait, that dwd has been heard from recently. */
  private watch(): void {
    if (this.watchdog) return;
    this.watchdog = setInterval(
      () => {
        if ((this.remote && !this.heard) || Date.now() - this.lastHeard <= this.silenceMs) return;
        // Timers run before pending socket data is read: if dw itself was busy (writing a big output),
        // frames may be waiting. Decide after the next poll of the socket, not before.
        setImmediate(() => {
          if (this.waiters.size === 0 || Date.now() - this.lastHeard <= this.silenceMs) return;
          const pid = this.daemonPid;
          const how = pid ? `: \`kill -CONT ${pid}\` resumes a stopped one, \`kill ${pid}\` ends it` : '';
          this.failAll(
            new DwError(
              'DW_ERR_DAEMON_UNREACHABLE',
              `${this.who()} does not answer: nothing came from it for ${(this.silenceMs / 1000).toFixed(1)} s (DW_CONNECT_TIMEOUT). It may be stopped or stuck${how}`,
              { pid, socket: this.path, silent_ms: Date.now() - this.lastHeard },
            ),
          );
          this.socket.destroy();
        });
      },
      Math.max(50, Math.min(500, this.silenceMs / 4)),
    );
    this.watchdog.unref();
  }

  private stopWatching(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
  }

  private settle(id: number): void {
    clearTimeout(this.waiters.get(id)?.deadline);
    this.waiters.delete(id);
    if (this.waiters.size === 0) this.stopWatching();
  }

  private onFrame(frame: unknown): void {
    this.lastHeard = Date.now();
    this.heard = true;
    if (!isServerFrame(frame)) return this.failAll(new DwError('DW_ERR_PROTOCOL', 'unexpected frame from dwd'));
    const f = frame as ServerFrame;
    if (f.id === null) {
      if (f.type === 'error') this.failAll(DwError.fromPayload(f.error));
      return;
    }
    const w = this.waiters.get(Number(f.id));
    if (!w) return;
    if (f.type === 'event') return w.onEvent?.(f.event);
    this.settle(Number(f.id));
    if (f.type === 'result') w.resolve(f.result);
    else w.reject(DwError.fromPayload(f.error));
  }

  private failAll(err: DwError): void {
    this.closedError ??= err;
    for (const [id, w] of [...this.waiters]) {
      this.settle(id);
      w.reject(err);
    }
  }
}
