// A workflow after validation and resolution: what the daemon hands to a runner. Every path is
// absolute, every variable substituted; only previous_result references remain, for the engine.

export interface PlanModel {
  role: string;
  kind: 'onnx' | 'text';
  path: string;
  /** Filled by the daemon: sha256 of the file, plus the session options for onnx models. */
  key: string;
  /** Files the model also reads (an onnx graph's external data): in its key, checked and watched with it. */
  files?: string[];
}

/** What an option left out means (model-identity.ts keys sessions with these filled in; the runner builds them so). */
export const SESSION_DEFAULTS = { intra_op_threads: 0, graph_optimization: 'all', intra_op_spinning: false, graph_rewrites: true } as const;

export interface SessionOptionsSpec {
  providers: string[];
  intra_op_threads?: number;
  graph_optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  intra_op_spinning?: boolean;
  graph_rewrites?: boolean;
}

export interface PlanStep {
  name: string;
  /** A workflow step comes after its sub-workflow's inlined steps and gathers their results. */
  kind: 'pipeline' | 'task' | 'workflow';
  /** A built-in pipeline or task type, a plugin's module path as written, or a sub-workflow's path. */
  type: string;
  models: PlanModel[];
  /** A plugin pipeline: its module file, and the daemon's sha256 of it (a changed file is re-imported). */
  module?: { path: string; key: string };
  session: SessionOptionsSpec;
  arguments: Record<string, unknown>;
  save: { name: string; content_type: string } | null;
  /** The step's own "cache" setting: false never, true even if not known deterministic. */
  cache?: boolean;
}

export interface Plan {
  /** `on_client`: the path is on the client's host (a run by content): shown, never watched here. */
  workflow: { id: string; path: string; on_client?: true };
  variables: Record<string, unknown>;
  steps: PlanStep[];
  /** The step cache for this run, set by the daemon: its folder, and `refresh` (dw run --no-cache) to run every step and store anew. */
  cache?: { dir: string; refresh: boolean } | null;
}
