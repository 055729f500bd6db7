// The workflow format's single source of truth. schema/workflow.schema.json is generated from it
// (npm run schema) so editors validate and complete workflow files with the same rules.
import { z } from 'zod';

export const CONTENT_TYPES = [
  'application/json',
  'text/plain',
  'image/png',
  'image/jpeg',
  'image/webp',
  'audio/wav',
  'application/x-npy',
] as const;
export const PROVIDERS = ['cuda', 'tensorrt', 'webgpu', 'cpu'] as const;

const name = z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'use letters, digits, "_" or "-", starting with a letter or "_"');
// A saved output lands in the client's --output-dir: a bare file name keeps it there.
const fileName = z.string().regex(/^(?!\.\.?$)[^/\\\0]+$/, 'a plain file name, without folders');
const variableValue = z.union([z.string(), z.number(), z.boolean(), z.null()], {
  error: 'a variable is a string, a finite number, true, false or null (not an object, an array, or a number too large for JSON)',
});

const resultSpec = z
  .object({
    content_type: z.enum(CONTENT_TYPES).default('application/json').describe('encoding of the saved output'),
    save: z.union([z.boolean(), fileName]).default(false).describe('true to save as <workflow>-<step>.<ext>, or a file name'),
  })
  .strict();

const pipelineSpec = z
  .object({
    type: z
      .string()
      .min(1)
      .describe('pipeline type: "paddle-ocr", "silero-vad", "onnx", "stable-diffusion", or a plugin module "./my-pipeline.js"'),
    models: z
      .record(z.string(), z.string().min(1))
      .describe('role → model path: relative to the workflow file, absolute, or npm:PACKAGE/PATH'),
    providers: z.array(z.enum(PROVIDERS)).min(1).default(['cpu']).describe('execution providers to try, in order'),
    options: z
      .object({
        intra_op_threads: z.number().int().min(0).optional().describe('threads per operator; 0 or absent: onnxruntime default'),
        graph_optimization: z.enum(['disabled', 'basic', 'extended', 'all']).optional(),
        graph_rewrites: z
          .boolean()
          .optional()
          .describe(
            "dw's exact rewrites before onnxruntime's (hard-swish chains to x*HardSigmoid(x)); absent: true, false: the file as it is",
          ),
        intra_op_spinning: z
          .boolean()
          .optional()
          .describe(
            "let onnxruntime's idle operator threads spin instead of sleeping; absent: false (see the README, Benchmarks, session setup)",
          ),
      })
      .strict()
      .default({}),
    arguments: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

const taskSpec = z
  .object({
    type: z.string().min(1).describe('task type, e.g. "text_join"'),
    arguments: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

const workflowStepSpec = z
  .object({
    path: z.string().min(1).describe('the sub-workflow file, relative to this one (or a variable: reference)'),
    arguments: z
      .record(z.string(), z.unknown())
      .default({})
      .describe("values for the sub-workflow's variables; previous_result: references pass earlier results in"),
  })
  .strict();

export const ONE_KIND = 'a step needs exactly one of "pipeline", "task" or "workflow"';

const stepSpec = z
  .object({
    name,
    description: z.string().optional(),
    pipeline: pipelineSpec.optional(),
    task: taskSpec.optional(),
    workflow: workflowStepSpec.optional(),
    result: resultSpec.optional(),
    cache: z
      .boolean()
      .optional()
      .describe(
        'false: always run this step; true: serve it from the step cache even where dw cannot tell it is deterministic (a plugin); absent: cached when deterministic',
      ),
  })
  .strict()
  .refine((s) => [s.pipeline, s.task, s.workflow].filter((x) => x !== undefined).length === 1, { message: ONE_KIND });

export const workflowSchema = z
  .object({
    $schema: z.string().optional(),
    id: name.describe('short identifier, used in output file names'),
    description: z.string().optional(),
    variables: z.record(name, variableValue).default({}).describe('parameters with their defaults; dw run --arg NAME=VALUE overrides them'),
    steps: z.array(stepSpec).min(1),
  })
  .strict();

export type Workflow = z.infer<typeof workflowSchema>;
export type Step = Workflow['steps'][number];
export type VariableValue = z.infer<typeof variableValue>;

export function workflowJsonSchema(): object {
  return z.toJSONSchema(workflowSchema, { io: 'input' });
}
