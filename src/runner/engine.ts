// Executes a resolved Plan step by step inside the runner: loads (or reuses) the step's sessions,
// resolves previous_result references, runs the pipeline or task, encodes what is to be saved.
import { DwError, toErrorPayload } from '../protocol/errors.js';
import type { ModelUse, RunEvent, RunOutput } from '../protocol/messages.js';
import { PIPELINE_IMPLS, TASK_IMPLS } from '../pipelines/registry.js';
import type { PipelineContext } from '../pipelines/types.js';
import type { Plan, PlanStep } from '../workflow/plan.js';
import { pickField, substitute } from '../workflow/references.js';
import { encodeResult } from './encode.js';
import type { RunnerResult } from './ipc.js';
import type { SessionCache } from './sessions.js';

export interface RunDeps {
  sessions: SessionCache;
  emit: (event: RunEvent) => void;
  signal: AbortSignal;
}

function resolveResults(args: Record<string, unknown>, results: Record<string, unknown>, step: string): Record<string, unknown> {
  return substitute(args, (ref, raw) => {
    if (ref.kind !== 'previous_result') return raw;
    const value = pickField(results[ref.step], ref.field);
    if (value === undefined) {
      throw new DwError('DW_ERR_BAD_REFERENCE', `step "${step}": ${raw} is empty: step "${ref.step}" has no field "${ref.field.join('.')}"`, { step, reference: raw });
    }
    return value;
  }) as Record<string, unknown>;
}

/** Loads every onnx model of a step up front, so load time and run time are reported apart. */
async function loadStepModels(step: PlanStep, deps: RunDeps, uses: ModelUse[]): Promise<Map<string, import('onnxruntime-node').InferenceSession>> {
  const loaded = new Map<string, import('onnxruntime-node').InferenceSession>();
  for (const model of step.models.filter((m) => m.kind === 'onnx')) {
    const got = await deps.sessions.session(model, step.session);
    loaded.set(model.role, got.session);
    uses.push({ step: step.name, role: model.role, path: model.path, key: model.key, provider: got.provider, cache: got.cache, load_ms: got.load_ms, ...(got.cache === 'loaded' ? { cost_bytes: got.cost_bytes } : {}) });
    deps.emit({ kind: 'cache', step: step.name, role: model.role, path: model.path, status: got.cache, provider: got.provider, load_ms: got.load_ms });
  }
  return loaded;
}

async function runStep(step: PlanStep, args: Record<string, unknown>, deps: RunDeps, uses: ModelUse[]): Promise<{ value: unknown; load_ms: number }> {
  if (step.kind === 'task') return { value: await TASK_IMPLS[step.type]!(args), load_ms: 0 };
  const pipeline = await PIPELINE_IMPLS[step.type]!();
  const before = uses.length;
  const sessions = await loadStepModels(step, deps, uses);
  const load_ms = uses.slice(before).reduce((sum, u) => sum + u.load_ms, 0);
  const byRole = new Map(step.models.map((m) => [m.role, m]));
  const ctx: PipelineContext = {
    has: (role) => byRole.has(role),
    session: async (role) => {
      const s = sessions.get(role);
      if (!s) throw new DwError('DW_ERR_INTERNAL', `pipeline "${step.type}" asked for model role "${role}" that the step does not give`, { role });
      return s;
    },
    text: async (role) => {
      const m = byRole.get(role);
      if (!m) throw new DwError('DW_ERR_INTERNAL', `pipeline "${step.type}" asked for asset role "${role}" that the step does not give`, { role });
      return deps.sessions.text(m);
    },
    progress: (done, total, unit) => deps.emit({ kind: 'progress', step: step.name, done, total, unit }),
    signal: deps.signal,
  };
  return { value: await pipeline.run(args, ctx), load_ms };
}

export async function runPlan(plan: Plan, deps: RunDeps): Promise<RunnerResult> {
  const t0 = performance.now();
  const results: Record<string, unknown> = {};
  const models: ModelUse[] = [];
  const outputs: RunOutput[] = [];
  let load_ms = 0;
  for (const step of plan.steps) {
    if (deps.signal.aborted) throw deps.signal.reason;
    const ts = performance.now();
    deps.emit({ kind: 'step', step: step.name, state: 'start' });
    try {
      const args = resolveResults(step.arguments, results, step.name);
      const out = await runStep(step, args, deps, models);
      results[step.name] = out.value;
      load_ms += out.load_ms;
      if (step.save) {
        outputs.push({ step: step.name, name: step.save.name, content_type: step.save.content_type, data_base64: encodeResult(out.value, step.save.content_type, step.name).toString('base64') });
      }
    } catch (err) {
      if (deps.signal.aborted) throw deps.signal.reason;
      if (err instanceof DwError) throw err;
      const p = toErrorPayload(err, 'DW_ERR_RUN_FAILED');
      throw new DwError(p.code, `step "${step.name}" (${step.type}) failed: ${p.message}`, { step: step.name });
    }
    deps.emit({ kind: 'step', step: step.name, state: 'done', ms: Math.round(performance.now() - ts) });
  }
  const total = Math.round(performance.now() - t0);
  return { results, models, outputs, load_ms, run_ms: total - load_ms, rss: process.memoryUsage.rss() };
}
