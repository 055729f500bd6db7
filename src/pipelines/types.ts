// The contract between the runner and a pipeline implementation. The runner owns sessions (cache,
// providers, hashing); a pipeline only asks for them by role, so the same code runs cold or warm.
import type { InferenceSession } from 'onnxruntime-node';

export type { RawImage } from '../media/image.js';

export interface PipelineContext {
  /** Whether the step gives this role (optional roles may be left out). */
  has(role: string): boolean;
  /** The loaded onnxruntime session for a model role declared by the pipeline (e.g. "det"). */
  session(role: string): Promise<InferenceSession>;
  /** The text content of a non-model asset role (e.g. "keys"), cached by content hash. */
  text(role: string): Promise<string>;
  /** Reports progress of a long step; cheap to call often. */
  progress(done: number, total: number, unit: string): void;
  /** Aborted when the run is cancelled or times out; check it between frames / boxes. */
  signal: AbortSignal;
  /** onnxruntime-node itself (for ort.Tensor), so a plugin outside this package need not resolve it. */
  ort: typeof import('onnxruntime-node');
}

export interface ModelRole {
  name: string;
  /** 'folder': a directory whose files the catalog's layout turns into onnx and text models. */
  kind: 'onnx' | 'text' | 'folder';
  required: boolean;
}

export interface Pipeline {
  type: string;
  roles: ModelRole[];
  /** Validates and normalises the step's arguments (after references are resolved). Throws DwError. */
  run(args: Record<string, unknown>, ctx: PipelineContext): Promise<unknown>;
}
