// Messages between dwd and its runner child process (Node IPC, structured clone). Internal: the
// public wire protocol is src/protocol; this one only has to agree with itself within one install.
import type { ErrorPayload } from '../protocol/errors.js';
import type { RunEvent, RunResult } from '../protocol/messages.js';
import type { Plan } from '../workflow/plan.js';

export type ToRunner =
  | { type: 'run'; runId: string; plan: Plan }
  | { type: 'cancel'; runId: string; reason: ErrorPayload }
  | { type: 'snapshot'; reqId: number };

export interface LoadedModelInfo {
  key: string;
  path: string;
  provider: string;
  load_ms: number;
  uses: number;
  last_used: number;
}

export type RunnerResult = Pick<RunResult, 'results' | 'models' | 'outputs'> & { load_ms: number; run_ms: number };

export type FromRunner =
  | { type: 'ready'; pid: number }
  | { type: 'event'; runId: string; event: RunEvent }
  | { type: 'done'; runId: string; result: RunnerResult }
  | { type: 'failed'; runId: string; error: ErrorPayload }
  | { type: 'snapshot'; reqId: number; rss: number; models: LoadedModelInfo[] };
