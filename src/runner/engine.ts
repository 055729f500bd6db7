// Executes a resolved Plan step by step inside the runner: loads (or reuses) the step's sessions,
// resolves previous_result references, runs the pipeline or task, encodes what is to be saved.
import * as ort from 'onnxruntime-node';
import { DwError, toErrorPayload } from '../protocol/errors.js';
import type { ModelUse, RunOutput } from '../protocol/messages.js';
import { PIPELINE_IMPLS, TASK_IMPLS } from '../pipelines/registry.js';
import { PIPELINES, TASKS } from '../pipelines/catalog.js';
import { fileArgPaths } from '../workflow/file-args.js';
import type { Pipeline, PipelineContext } from '../pipelines/types.js';
import type { Plan, PlanStep } from '../workflow/plan.js';
import { pickField, substitute } from '../workflow/references.js';
import { encodeResult } from './encode.js';
import type { EmitEvent, ModelReport, RunnerResult } from './ipc.js';
import { loadPlugin } from './plugins.js';
import { type CacheNote, notCached, StepCache, stepKey, type StepOutcome } from './step-cache.js';
import type { SessionCache } from './sessions.js';
import { RESULT_TENSOR_LIMIT, toJson, UnsendableValue } from './values.js';

export interface RunDeps {
  sessions: SessionCache;
  /** Output pieces return a promise: the next piece waits until the client can take it. */
  emit: EmitEvent;
  signal: AbortSignal;
  /** Room for the run's results as JSON: they travel back in one frame (the daemon's --max-frame). */
  maxResultBytes?: number;
  /** Told of every session the run gets, before its client is: the daemon's registry learns of loads from these. */
  model?: (report: ModelReport) => void;
  /** Counts the run's onnxruntime calls in progress: a run cancelled inside one can only be ended by a kill. */
  native?: { calls: number };
  /** Told of each step cache hit and stored entry as it happens, failed runs' too: the daemon keeps the store's count. */
  cached?: (note: CacheNote) => void;
}

/**
 * The session as a pipeline sees it, with its run() calls counted in `native`. onnxruntime-node
 * computes in its own threads while the event loop stays free, so a free loop alone does not say
 * that a run which ignores its cancel is merely waiting: this does.
 */
function counted(session: ort.InferenceSession, native: { calls: number }): ort.InferenceSession {
  return new Proxy(session, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== 'run') return typeof value === 'function' ? value.bind(target) : value;
      return async (...args: unknown[]) => {
        native.calls++;
        try {
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } finally {
          native.calls--;
        }
      };
    },
  });
}

/**
 * Saved outputs go to the client in pieces of this many bytes (87 KB as base64). Small pieces keep
 * the daemon's copies of them young garbage, collected at once: after 74 MB of output the
 * daemon's peak memory rose 38 MB with 64 KiB pieces, 94 MB with 256 KiB and 190 MB with 4 MiB.
 */
const OUTPUT_PIECE_BYTES = 64 * 1024;

/** A pipeline may report every frame; the client needs a few updates a second at most. */
const PROGRESS_EVERY_MS = 100;

function resolveResults(args: Record<string, unknown>, results: Record<string, unknown>, step: string): Record<string, unknown> {
  return substitute(args, (ref, raw) => {
    if (ref.kind !== 'previous_result') return raw;
    const value = pickField(results[ref.step], ref.field);
    if (value === undefined) {
      const what = ref.step in results ? `step "${ref.step}" has no field "${ref.field.join('.')}"` : `step "${ref.step}" has no result`;
      throw new DwError('DW_ERR_BAD_REFERENCE', `step "${step}": ${raw} is empty: ${what}`, { step, reference: raw });
    }
    return value;
  }) as Record<string, unknown>;
}

/** Loads every onnx model of a step up front, so load time and run time are reported apart. */
async function loadStepModels(step: PlanStep, deps: RunDeps, uses: ModelUse[]): Promise<Map<string, ort.InferenceSession>> {
  const loaded = new Map<string, ort.InferenceSession>();
  for (const model of step.models.filter((m) => m.kind === 'onnx')) {
    const got = await deps.sessions.session(model, step.session);
    loaded.set(model.role, got.session);
    uses.push({
      step: step.name,
      role: model.role,
      path: model.path,
      key: model.key,
      provider: got.provider,
      cache: got.cache,
      load_ms: got.load_ms,
      ...(got.cache === 'loaded' ? { cost_bytes: got.cost_bytes } : {}),
    });
    deps.model?.({
      step: step.name,
      role: model.role,
      status: got.cache,
      provider: got.provider,
      load_ms: got.load_ms,
      ...(got.cache === 'loaded' ? { cost_bytes: got.cost_bytes } : {}),
    });
    deps.emit({
      kind: 'cache',
      step: step.name,
      role: model.role,
      path: model.path,
      status: got.cache,
      provider: got.provider,
      load_ms: got.load_ms,
      ...(got.cache === 'loaded' ? { cost_bytes: got.cost_bytes } : {}),
    });
  }
  return loaded;
}

function progressReporter(step: string, emit: RunDeps['emit']): PipelineContext['progress'] {
  let last = 0;
  return (done, total, unit) => {
    const now = performance.now();
    if (done < total && now - last < PROGRESS_EVERY_MS) return;
    last = now;
    emit({ kind: 'progress', step, done, total, unit });
  };
}

async function pipelineOf(step: PlanStep): Promise<Pipeline> {
  if (!step.module) return PIPELINE_IMPLS[step.type]!();
  const plugin = await loadPlugin(step.module);
  const missing = plugin.roles.filter((r) => r.required && !step.models.some((m) => m.role === r.name));
  if (missing.length > 0)
    throw new DwError(
      'DW_ERR_WORKFLOW_INVALID',
      `step "${step.name}": the plugin ${step.type} needs model role${missing.length > 1 ? 's' : ''} ${missing.map((r) => `"${r.name}"`).join(', ')}`,
      { step: step.name },
    );
  return plugin;
}

/**
 * A file argument must be one the daemon resolved and checked (--allowed-roots, existence): a path
 * that arrives as a string from an earlier step's result has passed no check, so it is refused.
 */
function checkFileArgs(step: PlanStep, args: Record<string, unknown>): void {
  const info = step.kind === 'pipeline' ? PIPELINES[step.type] : step.kind === 'task' ? TASKS[step.type] : undefined;
  for (const pattern of info?.fileArgs ?? []) {
    for (const at of fileArgPaths(args, pattern.split('.'))) {
      if (pickField(step.arguments, at) !== pickField(args, at)) {
        throw new DwError(
          'DW_ERR_BAD_ARGUMENT',
          `step "${step.name}": "${at.join('.')}" got a file path from a step result; a file must be named in the workflow or an --arg, so the daemon can check it (pass the image, audio or tensor itself instead)`,
          { step: step.name, argument: at.join('.') },
        );
      }
    }
  }
}

async function runStep(
  step: PlanStep,
  args: Record<string, unknown>,
  deps: RunDeps,
  uses: ModelUse[],
): Promise<{ value: unknown; load_ms: number }> {
  checkFileArgs(step, args);
  if (step.kind === 'workflow') return { value: args, load_ms: 0 };
  if (step.kind === 'task') return { value: await (await TASK_IMPLS[step.type]!())(args), load_ms: 0 };
  const pipeline = await pipelineOf(step);
  const before = uses.length;
  const sessions = await loadStepModels(step, deps, uses);
  const load_ms = uses.slice(before).reduce((sum, u) => sum + u.load_ms, 0);
  const byRole = new Map(step.models.map((m) => [m.role, m]));
  const ctx: PipelineContext = {
    has: (role) => byRole.has(role),
    session: async (role) => {
      const s = sessions.get(role);
      if (!s)
        throw new DwError(
          'DW_ERR_WORKFLOW_INVALID',
          `step "${step.name}": pipeline "${step.type}" needs an onnx model for role "${role}"; the step gives: ${[...byRole.keys()].join(', ') || '(none)'}`,
          { role },
        );
      return deps.native ? counted(s, deps.native) : s;
    },
    text: async (role) => {
      const m = byRole.get(role);
      if (!m)
        throw new DwError(
          'DW_ERR_WORKFLOW_INVALID',
          `step "${step.name}": pipeline "${step.type}" needs a file for role "${role}"; the step gives: ${[...byRole.keys()].join(', ') || '(none)'}`,
          { role },
        );
      return deps.sessions.text(m);
    },
    progress: progressReporter(step.name, deps.emit),
    signal: deps.signal,
    ort,
  };
  return { value: await pipeline.run(args, ctx), load_ms };
}

/** A step's result as the client will see it: JSON, tensors past the limit shown by shape only. */
function shownResult(value: unknown, step: PlanStep): unknown {
  try {
    return toJson(value, RESULT_TENSOR_LIMIT);
  } catch (err) {
    if (!(err instanceof UnsendableValue)) throw err;
    throw new DwError(
      'DW_ERR_RUN_FAILED',
      `step "${step.name}" (${step.type}): its result ${err.why.replace(/^it /, '')} (at ${err.path}), so it cannot be sent as JSON; return a plain value`,
      { step: step.name, at: err.path },
    );
  }
}

const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;

/**
 * A step's value: from the step cache when it holds it (no model touched, none loaded), else run
 * (and stored for next time). Steps that are not cached run as always.
 */
async function cachedStep(
  step: PlanStep,
  args: Record<string, unknown>,
  deps: RunDeps,
  models: ModelUse[],
  cache: StepCache | null,
  refresh: boolean,
): Promise<{ value: unknown; load_ms: number; outcome: Omit<StepOutcome, 'ms'> }> {
  const off = async () => ({ ...(await runStep(step, args, deps, models)), outcome: { name: step.name, cache: 'off' as const } });
  if (!cache || notCached(step, args) !== null) return off();
  checkFileArgs(step, args);
  let key: string;
  try {
    key = await stepKey(step, args);
  } catch {
    // An input gone meanwhile: the step says so itself when it runs.
    if (deps.signal.aborted) throw deps.signal.reason;
    return off();
  }
  // Said, not failed: the result is good, only the next run will compute it again (a full disk).
  const unkept = (why: string) =>
    void deps.emit({ kind: 'log', level: 'warn', message: `step "${step.name}": its result could not be kept in the step cache (${why})` });
  let found: Awaited<ReturnType<StepCache['claim']>>;
  try {
    const waiting = (pid: number) =>
      void deps.emit({
        kind: 'log',
        level: 'info',
        message: `step "${step.name}": waiting for another run that computes the same result${pid > 0 ? ` (runner pid ${pid})` : ''}`,
      });
    found = refresh ? null : ((await cache.get(key)) ?? (await cache.claim(key, waiting)));
  } catch (err) {
    // The cache is an aid: a folder that cannot be written (no room even for a lock) leaves the
    // step to run as if there were none; it is a miss all the same, and said.
    if (deps.signal.aborted) throw deps.signal.reason;
    cache.missed();
    unkept((err as NodeJS.ErrnoException).code ?? (err as Error).message);
    return { ...(await runStep(step, args, deps, models)), outcome: { name: step.name, cache: 'miss' } };
  }
  if (found) return { value: found.value, load_ms: 0, outcome: { name: step.name, cache: 'hit', saved_ms: found.ms } };
  const t0 = performance.now();
  let out: { value: unknown; load_ms: number };
  try {
    out = await runStep(step, args, deps, models);
  } catch (err) {
    await cache.release(key);
    throw err;
  }
  const unstored = await cache.put(key, out.value === undefined ? null : out.value, Math.round(performance.now() - t0 - out.load_ms));
  if (unstored) unkept(unstored);
  return { ...out, outcome: { name: step.name, cache: 'miss' } };
}

export async function runPlan(plan: Plan, deps: RunDeps): Promise<RunnerResult> {
  const t0 = performance.now();
  const cache = plan.cache ? new StepCache(plan.cache.dir, deps.signal, deps.cached) : null;
  const steps: StepOutcome[] = [];
  const results: Record<string, unknown> = {};
  /** What the client gets: the top-level steps' results as JSON, within the room one result frame has. */
  const shown: Record<string, unknown> = {};
  let shownBytes = 0;
  const room = deps.maxResultBytes ?? Infinity;
  const models: ModelUse[] = [];
  const outputs: RunOutput[] = [];
  let load_ms = 0;
  for (const step of plan.steps) {
    if (deps.signal.aborted) throw deps.signal.reason;
    const ts = performance.now();
    deps.emit({ kind: 'step', step: step.name, state: 'start' });
    try {
      const args = resolveResults(step.arguments, results, step.name);
      const out = await cachedStep(step, args, deps, models, cache, plan.cache?.refresh === true);
      steps.push({ ...out.outcome, ms: Math.round(performance.now() - ts) });
      // A plugin that returns nothing has a result all the same: null, not a step missing from results.
      const value = out.value === undefined ? null : out.value;
      results[step.name] = value;
      load_ms += out.load_ms;
      // Inlined sub-workflow steps ("sub/read") show inside their workflow step's result only.
      if (!step.name.includes('/')) {
        const json = shownResult(value, step);
        const bytes = Buffer.byteLength(JSON.stringify(json));
        if (shownBytes + bytes <= room) {
          shown[step.name] = json;
          shownBytes += bytes;
        } else if (step.save) {
          shown[step.name] = {
            kind: 'saved',
            name: step.save.name,
            note: `${mb(bytes)} as JSON, too large to send back; it is in the saved file`,
          };
        } else {
          throw new DwError(
            'DW_ERR_RESULT_TOO_LARGE',
            `step "${step.name}" (${step.type}): its result is ${mb(bytes)} as JSON, more than the ${mb(room)} a run's results may take; save it to a file with "result": {"save": true}`,
            { step: step.name, bytes, max_bytes: room },
          );
        }
      }
      if (step.save) {
        const bytes = await encodeResult(value, step.save.content_type, step.name);
        const index = outputs.length;
        for (let at = 0; at < bytes.length; at += OUTPUT_PIECE_BYTES)
          await deps.emit({ kind: 'output', index, data_base64: bytes.subarray(at, at + OUTPUT_PIECE_BYTES).toString('base64') });
        outputs.push({ step: step.name, name: step.save.name, content_type: step.save.content_type, bytes: bytes.length });
      }
    } catch (err) {
      if (deps.signal.aborted) throw deps.signal.reason;
      if (err instanceof DwError) throw err;
      const p = toErrorPayload(err, 'DW_ERR_RUN_FAILED');
      throw new DwError(p.code, `step "${step.name}" (${step.type}) failed: ${p.message}`, { step: step.name });
    }
    const done = steps.at(-1)!;
    deps.emit({
      kind: 'step',
      step: step.name,
      state: 'done',
      ms: Math.round(performance.now() - ts),
      ...(done.cache === 'hit' ? { cache: 'hit' as const, saved_ms: done.saved_ms } : {}),
    });
  }
  const total = Math.round(performance.now() - t0);
  return {
    results: shown,
    models,
    outputs,
    steps,
    load_ms,
    run_ms: total - load_ms,
    rss: process.memoryUsage.rss(),
  };
}
