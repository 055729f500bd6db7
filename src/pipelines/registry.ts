// Implementations by type, for the runner. Loaded on first use, so a runner pays for sharp and a
// pipeline's code only when a workflow needs them. The daemon uses catalog.ts instead, which has
// no heavy imports; test/catalog.test.ts keeps the two in step.
import type { Pipeline } from './types.js';
import { textJoin } from './tasks/text-join.js';
import { jsonPick } from './tasks/json-pick.js';

export const PIPELINE_IMPLS: Record<string, () => Promise<Pipeline>> = {
  'paddle-ocr': async () => (await import('./paddle-ocr/index.js')).paddleOcr,
};

export const TASK_IMPLS: Record<string, (args: Record<string, unknown>) => unknown> = {
  text_join: textJoin,
  json_pick: jsonPick,
};
