// Accepts connections, frames them, requires a hello first, and dispatches each request through
// the handler table. A bad frame costs only its own connection; a handler error only its request.
import type { Server, Socket } from 'node:net';
import { type ErrorPayload, toErrorPayload } from '../protocol/errors.js';
import { encodeFrame, FrameReader } from '../protocol/framing.js';
import { checkRequest, type Request, type RequestId, type RequestType, type RunEvent, type ServerFrame } from '../protocol/messages.js';
import { collectSoon, LARGE_FRAME } from './idle-gc.js';
import type { Logger } from './log.js';
import type { ClientFiles } from './client-files.js';

export interface Connection {
  readonly id: number;
  helloDone: boolean;
  /**
   * Runs of this connection, by internal id, from the moment the request arrives: each run's one
   * AbortController, which a cancel, a disconnect, its deadline or shutdown aborts, at whatever
   * stage the run is (checks, queue, runner).
   */
  readonly runs: Map<string, AbortController>;
  /** Of this connection's runs and validations by content, by internal id: where its offers and pieces go. */
  readonly files: Map<string, ClientFiles>;
  /** Resolves once the socket has taken the frame(s) (or the connection is gone): flow control for outputs. */
  event(id: RequestId, event: RunEvent): Promise<void>;
  readonly closed: boolean;
}

export type Handler<T extends RequestType = RequestType> = (req: Extract<Request, { type: T }>, conn: Connection) => Promise<unknown>;
export type HandlerTable = { [T in RequestType]: Handler<T> };

export interface ServeOptions {
  handlers: HandlerTable;
  log: Logger;
  maxFrame: number;
  onClose: (conn: Connection) => void;
}

/**
 * While a request is in progress its connection hears from the daemon at least this often (an
 * `alive` event), so dw can tell a frozen daemon (SIGSTOP, a stuck event loop) from a long run.
 */
export const HEARTBEAT_MS = 1000;
/** Bad requests logged per connection; the rest are counted, and the count logged when it closes. */
const LOGGED_REFUSALS = 5;
/** Bad requests answered while the socket is full, before the connection is dropped (about 100 kB of answers). */
const MAX_REFUSED_UNREAD = 1000;
/** How long a peer being hung up on may go on sending before its socket is destroyed. */
const HANG_UP_MS = 2000;

/**
 * Requests one connection may have in progress. Past it the daemon stops reading that connection
 * until some finish, as it does while the client leaves answers unread: a client that pipelined
 * 200,000 requests without reading once took the daemon to 1.9 GB and minutes of silence.
 */
export const MAX_IN_FLIGHT = 32;

/**
 * The largest request dwd reads (--max-frame bounds what it sends). A request names files and
 * carries --arg strings, which a command line already limits to about 2 MB in all.
 */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/**
 * Unfinished requests held across all connections at most. Each may hold one partial frame; sixty
 * clients each sending 63 MB without a newline once took dwd past 3 GB, and down.
 */
export const MAX_BUFFERED_TOTAL = 64 * 1024 * 1024;

/** Room in a frame for everything around an output piece's data (ids are at most 128 characters). */
const FRAME_OVERHEAD = 1024;

/**
 * An output piece split so each frame fits this daemon's --max-frame. The runner cuts pieces of a
 * fixed size; cutting the base64 at multiples of 4 characters keeps every part decodable alone.
 */
function withinFrame(e: RunEvent, maxFrame: number): RunEvent[] {
  const room = Math.max(4, Math.floor((maxFrame - FRAME_OVERHEAD) / 4) * 4);
  if (e.kind !== 'output' || e.data_base64.length <= room) return [e];
  const parts: RunEvent[] = [];
  for (let at = 0; at < e.data_base64.length; at += room) parts.push({ ...e, data_base64: e.data_base64.slice(at, at + room) });
  return parts;
}

/** A connection as a holder of unfinished request data, which may be dropped to make room. */
interface Holder {
  held(): number;
  /** When it last sent anything. */
  lastData: number;
  drop(): void;
}

export function serve(server: Server, opts: ServeOptions): { connections: Set<Socket>; stop: () => void } {
  const sockets = new Set<Socket>();
  /** Per connection: its requests in progress, and how to tell its client the daemon is alive. */
  const working = new Map<Socket, { pending: Set<RequestId>; beat: (id: RequestId) => void }>();
  const heartbeat = setInterval(() => {
    for (const { pending, beat } of working.values()) {
      const first = pending.values().next();
      if (!first.done) beat(first.value);
    }
  }, HEARTBEAT_MS);
  heartbeat.unref();
  let seq = 0;
  /** Characters of unfinished requests held by all connections' readers. */
  let buffered = 0;
  const holders = new Set<Holder>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    const pending = new Set<RequestId>();
    const log = opts.log.child({ conn: ++seq });
    let closed = false;
    let greeted = false;
    /** false while the socket holds more than it can pass on: wait for drained() before more. */
    const write = (frame: ServerFrame): boolean => {
      if (closed || socket.destroyed || socket.writableEnded) return true;
      let line: string;
      try {
        line = encodeFrame(frame, opts.maxFrame);
      } catch (err) {
        line = encodeFrame({ id: frame.id, type: 'error', error: toErrorPayload(err) });
      }
      // Collected once written: until then the socket still holds the frame.
      return line.length >= LARGE_FRAME ? socket.write(line, collectSoon) : socket.write(line);
    };
    // One wait per socket, shared by every piece waiting on it (a run has up to 16 in flight).
    let draining: Promise<void> | null = null;
    const drained = () =>
      (draining ??= new Promise<void>((resolve) => {
        const done = () => {
          socket.off('drain', done);
          socket.off('close', done);
          draining = null;
          resolve();
        };
        socket.on('drain', done);
        socket.on('close', done);
      }));
    const conn: Connection = {
      id: seq,
      helloDone: false,
      runs: new Map(),
      files: new Map(),
      event: (id, event) => {
        let flowing = true;
        for (const e of withinFrame(event, opts.maxFrame)) flowing = write({ id, type: 'event', event: e });
        return flowing || closed || socket.destroyed ? Promise.resolve() : drained();
      },
      get closed() {
        return closed;
      },
    };
    working.set(socket, { pending, beat: (id) => write({ id, type: 'event', event: { kind: 'alive' } }) });
    /** Checked requests read but not yet dispatched: the rest of a chunk read while the connection was full. */
    const backlog: Request[] = [];
    const dispatch = (req: Request) => {
      const handler = opts.handlers[req.type] as Handler;
      pending.add(req.id);
      handler(req, conn)
        .then(
          (result) => write({ id: req.id, type: 'result', result }),
          (err: unknown) => {
            const error = toErrorPayload(err);
            if (error.code === 'DW_ERR_INTERNAL') log.error({ err, type: req.type }, 'handler failed');
            write({ id: req.id, type: 'error', error });
          },
        )
        .finally(() => {
          pending.delete(req.id);
          pump();
        });
    };
    /** Dispatches what the connection has room for, and reads on only while it has room and its client reads. */
    const pump = () => {
      while (backlog.length > 0 && pending.size < MAX_IN_FLIGHT) dispatch(backlog.shift()!);
      const full = backlog.length > 0 || socket.writableNeedDrain;
      if (full && !socket.isPaused()) socket.pause();
      else if (!full && socket.isPaused() && !closed) socket.resume();
    };
    socket.on('drain', pump);
    /**
     * Answers once, then closes this peer only. Its writes in flight are read and dropped until it
     * closes too: a socket closed with unread data resets the peer, which then loses the answer too.
     */
    const hangUp = (error: ErrorPayload) => {
      reader.stop();
      backlog.length = 0; // read before the hang-up, never to start
      write({ id: null, type: 'error', error });
      socket.end();
      socket.resume(); // paused (full): it must be read, and dropped, too
      setTimeout(() => socket.destroy(), HANG_UP_MS).unref();
    };
    let refused = 0;
    /** Refusals written while the socket was full, since it last drained. */
    let refusedUnread = 0;
    socket.on('drain', () => (refusedUnread = 0));
    /**
     * Answers a request that cannot be taken. Its answer counts against the connection as any does
     * (a client that floods bad requests and never reads is paused, not buffered for: that grew
     * dwd by gigabytes), and only the first few are logged.
     */
    const refuse = (id: RequestId | null, message: string) => {
      if (++refused <= LOGGED_REFUSALS) log.warn({ reason: message }, 'bad request');
      // Answers piling up unread: the rest of a read chunk (32,768 lines of "1") is not answered
      // line by line; a client that sends bad requests faster than it reads is none we serve. A
      // few are let through while a run's output fills the socket.
      if (socket.writableNeedDrain && ++refusedUnread > MAX_REFUSED_UNREAD) {
        log.warn({ refused }, 'closing a connection: bad requests whose answers it does not read');
        return hangUp({ code: 'DW_ERR_PROTOCOL', message: `${refused} bad requests, their answers unread; this connection is dropped` });
      }
      write({ id, type: 'error', error: { code: 'DW_ERR_PROTOCOL', message } });
      pump();
    };
    const reader = new FrameReader(
      (frame) => {
        const checked = checkRequest(frame);
        if (!checked.ok) return refuse(checked.id, checked.reason);
        const req = checked.request;
        // `stop` needs a hello, but not a matching one, so that a dw of another version can still
        // replace this daemon after an upgrade.
        if (req.type === 'hello') greeted = true;
        if (!conn.helloDone && req.type !== 'hello' && !(req.type === 'stop' && greeted)) return refuse(req.id, 'send "hello" first');
        // A cancel never waits behind the runs it may be meant for, nor do the files a run waits for.
        if (req.type === 'cancel' || req.type === 'offer' || req.type === 'put') dispatch(req);
        else backlog.push(req);
        pump();
      },
      (err) => {
        // After garbage the stream position is meaningless: answer once, then close this peer only.
        log.warn({ err: err.message }, 'closing a connection after a bad frame');
        hangUp(err.toPayload());
      },
      Math.min(opts.maxFrame, MAX_REQUEST_BYTES),
    );
    const holder: Holder = {
      held: () => reader.buffered,
      lastData: Date.now(),
      drop: () => {
        log.warn(
          { buffered, held: reader.buffered },
          'closing a connection: of too much unfinished request data, it sent none for longest',
        );
        buffered -= reader.buffered;
        hangUp({
          code: 'DW_ERR_PROTOCOL',
          message: `dwd holds ${MAX_BUFFERED_TOTAL / 1048576} MB of unfinished requests from its clients; this connection's, idle longest, is dropped`,
        });
      },
    };
    holders.add(holder);
    socket.on('data', (chunk) => {
      holder.lastData = Date.now();
      const before = reader.buffered;
      reader.push(chunk);
      buffered += reader.buffered - before;
      // The holder that sent nothing for longest goes, not the one adding last: half-sent frames
      // left idle must not shut out a client that is sending its request. (A connection dwd itself
      // paused counts as idle too.)
      while (buffered > MAX_BUFFERED_TOTAL) {
        let idlest: Holder | null = null;
        for (const h of holders) if (h.held() > 0 && (!idlest || h.lastData < idlest.lastData)) idlest = h;
        if (!idlest) break;
        idlest.drop();
      }
    });
    socket.on('error', (err) => log.debug({ err: err.message }, 'socket error'));
    socket.on('close', () => {
      closed = true;
      holders.delete(holder);
      if (refused > LOGGED_REFUSALS) log.warn({ refused }, 'bad requests on this connection in all (the first ones logged)');
      buffered -= reader.buffered;
      reader.stop();
      sockets.delete(socket);
      working.delete(socket);
      opts.onClose(conn);
    });
  });
  return { connections: sockets, stop: () => clearInterval(heartbeat) };
}
