// Messages between dwd and its runner child process (Node IPC, structured clone). Internal: the
// public wire protocol is src/protocol; this one only has to agree with itself within one install.
import type { ErrorPayload } from '../protocol/errors.js';
import type { RunEvent, RunResult } from '../protocol/messages.js';
import type { Plan, PlanModel, SessionOptionsSpec } from '../workflow/plan.js';
import type { CacheNote } from './step-cache.js';

/** Where a run's events go; an output piece's promise settles once the client has taken it. */
export type EmitEvent = (event: RunEvent) => void | Promise<void>;

export type ToRunner =
  /** `maxResultBytes`: room for the results as JSON in the daemon's result frame. */
  | { type: 'run'; runId: string; plan: Plan; maxResultBytes: number }
  | { type: 'cancel'; runId: string; reason: ErrorPayload }
  | { type: 'snapshot'; reqId: number }
  | { type: 'release'; reqId: number; keys: string[] }
  | { type: 'preload'; reqId: number; model: PlanModel; session: SessionOptionsSpec }
  /** The client has taken an output piece the runner sent with `ack` (flow control). */
  | { type: 'ack'; runId: string }
  /** Is the event loop free? A run that ignores its cancel while the loop answers is abandoned, not killed. */
  | { type: 'ping'; reqId: number }
  /** The daemon gave up on a run that never yields: drop it (whatever it still sends is ignored). */
  | { type: 'forget'; runId: string };

export interface LoadedModelInfo {
  key: string;
  path: string;
  /** An onnx graph's external-data files, if it has any. */
  files?: string[];
  provider: string;
  load_ms: number;
  /** Runner RSS growth measured across the load: what this session cost in memory. */
  cost_bytes: number;
  uses: number;
  last_used: number;
}

/** A session a run asked for, as the runner found it (loaded now, or already loaded): what the daemon's model registry learns from. */
export interface ModelReport {
  step: string;
  role: string;
  status: 'hit' | 'loaded';
  provider: string;
  load_ms: number;
  /** Loaded: the runner's RSS growth across the load. */
  cost_bytes?: number;
}

export type RunnerResult = Pick<RunResult, 'results' | 'models' | 'outputs' | 'steps'> & {
  load_ms: number;
  run_ms: number;
  rss: number;
};

export type FromRunner =
  /** `rss`: a fresh runner's memory, before any model: what the daemon counts a runner's excess from. */
  | { type: 'ready'; pid: number; rss: number }
  /** `ack`: an output piece; the runner sends only a few of them ahead of the daemon's acks. */
  | { type: 'event'; runId: string; event: RunEvent; ack?: true }
  /** Sent before the run's own `cache` event for that session. */
  | ({ type: 'model'; runId: string } & ModelReport)
  | { type: 'done'; runId: string; result: RunnerResult }
  /** A step cache hit, or an entry stored (its size change): the daemon counts the store (--cache-size). */
  | ({ type: 'cached' } & CacheNote)
  | { type: 'failed'; runId: string; error: ErrorPayload }
  | { type: 'snapshot'; reqId: number; rss: number; models: LoadedModelInfo[] }
  | { type: 'released'; reqId: number; keys: string[]; rss_before: number; rss_after: number }
  | { type: 'preloaded'; reqId: number; error: ErrorPayload | null }
  /** `native`: the runs inside an onnxruntime call right now (only a kill ends one that will not return). */
  | { type: 'pong'; reqId: number; native: string[] };
