// Reads, validates and resolves a workflow into a Plan. Everything that can be checked without a
// model is checked here, so a typo never costs a model load and bad input never reaches a runner.
import { readFile, access, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DwError } from '../protocol/errors.js';
import { PIPELINES, TASKS, type StepTypeInfo } from '../pipelines/catalog.js';
import { workflowSchema, type Workflow, type VariableValue } from './schema.js';
import { collectReferences, jsonPath, parseReference, substitute } from './references.js';
import { resolveModelPath } from './model-paths.js';
import { jsonErrorOffset, lineCol } from './json-error.js';
import { AllowedRoots } from './roots.js';
import type { Plan, PlanModel, PlanStep } from './plan.js';

export interface Problem { path: string; message: string }

const EXTENSIONS: Record<string, string> = {
  'application/json': 'json', 'text/plain': 'txt', 'image/png': 'png', 'image/jpeg': 'jpg', 'audio/wav': 'wav', 'application/x-npy': 'npy',
};

/** A variable's value and the folder a relative path in it is relative to. */
interface Bound { value: VariableValue; base: string }

export async function readWorkflow(path: string): Promise<Workflow> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new DwError('DW_ERR_FILE_NOT_FOUND', `cannot read workflow ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { path });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const msg = (err as Error).message;
    const offset = jsonErrorOffset(text);
    const at = lineCol(text, offset < 0 ? text.length : offset);
    throw new DwError('DW_ERR_WORKFLOW_INVALID', `${path}:${at.line}:${at.column}: not valid JSON: ${msg}`, { path, line: at.line, column: at.column, problems: [{ path: '$', message: msg }] });
  }
  const parsed = workflowSchema.safeParse(json);
  const problems: Problem[] = parsed.success
    ? semanticProblems(parsed.data)
    : [...parsed.error.issues.map((i) => ({ path: jsonPath(i.path), message: i.message })), ...semanticProblemsOfDraft(json)];
  if (problems.length > 0) throw invalid(path, problems);
  return parsed.data!;
}

/**
 * The semantic checks on a file that fails the schema, as far as its shape allows, so one
 * `dw validate` lists every problem instead of the next round's after each fix.
 */
function semanticProblemsOfDraft(json: unknown): Problem[] {
  const rec = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (!rec(json) || !Array.isArray(json.steps)) return [];
  const steps = json.steps.map((st: unknown) => {
    if (!rec(st)) return { name: '', task: { type: '', arguments: {} } };
    const spec = (x: unknown) => (rec(x) ? { ...x, type: String(x.type ?? ''), arguments: rec(x.arguments) ? x.arguments : {}, models: rec(x.models) ? x.models : {} } : undefined);
    return { ...st, name: String(st.name ?? ''), pipeline: spec(st.pipeline), task: st.pipeline ? undefined : spec(st.task) ?? { type: '', arguments: {} } };
  });
  try {
    // Type names that are missing or empty were already reported by the schema.
    return semanticProblems({ ...json, variables: rec(json.variables) ? json.variables : {}, steps } as Workflow).filter((p) => !/unknown (pipeline|task) type ""/.test(p.message));
  } catch {
    return [];
  }
}

function invalid(path: string, problems: Problem[]): DwError {
  const list = problems.map((p) => `  ${p.path}: ${p.message}`).join('\n');
  return new DwError('DW_ERR_WORKFLOW_INVALID', `${path} is not a valid workflow (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${list}`, { path, problems });
}

function stepInfo(step: Workflow['steps'][number]): { info: StepTypeInfo | undefined; type: string; kind: 'pipeline' | 'task' } {
  return step.pipeline
    ? { info: PIPELINES[step.pipeline.type], type: step.pipeline.type, kind: 'pipeline' }
    : { info: TASKS[step.task!.type], type: step.task!.type, kind: 'task' };
}

/** Checks the schema cannot express: names, types, roles and references. */
function semanticProblems(wf: Workflow): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  const declared = Object.keys(wf.variables);
  wf.steps.forEach((step, i) => {
    const at = (...p: (string | number)[]) => jsonPath(['steps', i, ...p]);
    if (seen.has(step.name)) problems.push({ path: at('name'), message: `duplicate step name "${step.name}"` });
    const { info, type, kind } = stepInfo(step);
    const known = Object.keys(kind === 'pipeline' ? PIPELINES : TASKS);
    if (!info) problems.push({ path: at(kind, 'type'), message: `unknown ${kind} type "${type}"; known: ${known.join(', ')}` });
    if (info && step.pipeline) {
      const roles = info.roles.map((r) => r.name);
      for (const role of Object.keys(step.pipeline.models)) {
        if (!roles.includes(role)) problems.push({ path: at('pipeline', 'models', role), message: `"${type}" has no model role "${role}"; roles: ${roles.join(', ')}` });
      }
      for (const r of info.roles) {
        if (r.required && !(r.name in step.pipeline.models)) problems.push({ path: at('pipeline', 'models'), message: `"${type}" needs a "${r.name}" model` });
      }
    }
    const args = (step.pipeline ?? step.task)!.arguments;
    const refs = [
      ...collectReferences(args, [kind, 'arguments']),
      ...(step.pipeline ? collectReferences(step.pipeline.models, ['pipeline', 'models']) : []),
    ];
    for (const { ref, path } of refs) {
      if (ref.kind === 'variable' && !declared.includes(ref.name)) {
        problems.push({ path: at(...path), message: `unknown variable "${ref.name}"; declared: ${declared.join(', ') || '(none)'}` });
      }
      if (ref.kind === 'previous_result' && !seen.has(ref.step)) {
        problems.push({ path: at(...path), message: `"previous_result:${ref.step}" must name an earlier step; earlier steps: ${[...seen].join(', ') || '(none)'}` });
      }
    }
    seen.add(step.name);
  });
  return problems;
}

/** Applies --arg values, typed like the declared default (a number stays a number). */
export function bindVariables(wf: Workflow, workflowDir: string, args: Record<string, string>, cwd: string): Record<string, Bound> {
  const declared = Object.keys(wf.variables);
  const unknown = Object.keys(args).filter((k) => !declared.includes(k));
  if (unknown.length > 0) {
    throw new DwError(
      'DW_ERR_UNKNOWN_VARIABLE',
      `the workflow "${wf.id}" does not declare ${unknown.map((u) => `"${u}"`).join(', ')}; declared variables: ${declared.join(', ') || '(none)'}`,
      { unknown, declared },
    );
  }
  const bound: Record<string, Bound> = {};
  for (const [name, def] of Object.entries(wf.variables)) {
    bound[name] = name in args ? { value: coerce(name, args[name]!, def), base: cwd } : { value: def, base: workflowDir };
  }
  return bound;
}

function coerce(name: string, raw: string, def: VariableValue): VariableValue {
  if (typeof def === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw new DwError('DW_ERR_BAD_ARGUMENT', `--arg ${name}=${raw}: "${name}" is a number (default ${def}), got "${raw}"`, { name, expected: 'number', got: raw });
    return n;
  }
  if (typeof def === 'boolean') {
    if (/^(true|1|yes)$/i.test(raw)) return true;
    if (/^(false|0|no)$/i.test(raw)) return false;
    throw new DwError('DW_ERR_BAD_ARGUMENT', `--arg ${name}=${raw}: "${name}" is a boolean (true/false), got "${raw}"`, { name, expected: 'boolean', got: raw });
  }
  return raw;
}

async function checkReadable(path: string, code: 'DW_ERR_MODEL_NOT_FOUND' | 'DW_ERR_FILE_NOT_FOUND', what: string): Promise<void> {
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error('not a regular file');
    await access(path, constants.R_OK);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new DwError(code, `${what} ${path} cannot be read (${why})`, { path });
  }
}

/** Reads, validates and resolves a workflow, checking every model and input file it names. */
export async function loadPlan(workflowPath: string, args: Record<string, string>, cwd: string, roots: AllowedRoots = new AllowedRoots(null)): Promise<Plan> {
  const path = resolve(cwd, workflowPath);
  // Before reading: a refused file must not even be parsed (its content would show in errors).
  await roots.check(path, 'workflow');
  const wf = await readWorkflow(path);
  const dir = dirname(path);
  // File problems are collected, so one `dw validate` names every missing model and input.
  const missing: DwError[] = [];
  const checkFile = async (file: string, code: 'DW_ERR_MODEL_NOT_FOUND' | 'DW_ERR_FILE_NOT_FOUND', what: string) => {
    try {
      await roots.check(file, what);
      await checkReadable(file, code, what);
    } catch (err) {
      if (!(err instanceof DwError)) throw err;
      missing.push(err);
    }
  };
  const vars = bindVariables(wf, dir, args, cwd);
  const steps: PlanStep[] = [];
  for (const step of wf.steps) {
    const { info, type, kind } = stepInfo(step);
    const spec = (step.pipeline ?? step.task)!;
    const models: PlanModel[] = [];
    for (const [role, raw] of Object.entries(step.pipeline?.models ?? {})) {
      const ref = parseReference(raw);
      const bound = ref?.kind === 'variable' ? vars[ref.name]! : { value: raw, base: dir };
      const resolved = resolveModelPath(String(bound.value), bound.base);
      if ('error' in resolved) {
        missing.push(new DwError('DW_ERR_MODEL_NOT_FOUND', `step "${step.name}", model "${role}": ${resolved.error}`, { step: step.name, role, ref: raw }));
        continue;
      }
      await checkFile(resolved.path, 'DW_ERR_MODEL_NOT_FOUND', `step "${step.name}": model "${role}"`);
      const kindOf = info!.roles.find((r) => r.name === role)!.kind;
      models.push({ role, kind: kindOf, path: resolved.path, key: '' });
    }
    const argsOut = substitute(spec.arguments, (ref, raw) => (ref.kind === 'variable' ? vars[ref.name]!.value : raw)) as Record<string, unknown>;
    for (const name of info!.fileArgs) {
      const rawArg = spec.arguments[name];
      const ref = parseReference(rawArg);
      if (ref?.kind === 'previous_result' || argsOut[name] === undefined || argsOut[name] === null) continue;
      const base = ref?.kind === 'variable' ? vars[ref.name]!.base : dir;
      if (typeof argsOut[name] !== 'string') {
        throw new DwError('DW_ERR_BAD_ARGUMENT', `step "${step.name}": argument "${name}" must be a file path, got ${JSON.stringify(argsOut[name])}`, { step: step.name, argument: name });
      }
      argsOut[name] = resolve(base, argsOut[name] as string);
      await checkFile(argsOut[name] as string, 'DW_ERR_FILE_NOT_FOUND', `step "${step.name}": input "${name}"`);
    }
    const save = step.result?.save;
    const contentType = step.result?.content_type ?? 'application/json';
    steps.push({
      name: step.name,
      kind,
      type,
      models,
      session: {
        providers: step.pipeline?.providers ?? ['cpu'],
        intra_op_threads: step.pipeline?.options.intra_op_threads,
        graph_optimization: step.pipeline?.options.graph_optimization,
      },
      arguments: argsOut,
      save: save ? { name: typeof save === 'string' ? save : `${wf.id}-${step.name}.${EXTENSIONS[contentType]}`, content_type: contentType } : null,
    });
  }
  if (missing.length === 1) throw missing[0]!;
  if (missing.length > 1) {
    // The first problem's code decides the exit code; the message lists them all.
    throw new DwError(missing[0]!.code, `${missing.length} files cannot be used:\n${missing.map((e) => `  ${e.message}`).join('\n')}`, { problems: missing.map((e) => e.toPayload()) });
  }
  return {
    workflow: { id: wf.id, path },
    variables: Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, v.value])),
    steps,
  };
}

/**
 * The model files a workflow names (with variables at their defaults), for `dw clear WORKFLOW`.
 * Unlike loadPlan it does not require the inputs or the models to exist: clearing must work on a
 * workflow whose sample image was moved, or whose model was deleted.
 */
export async function modelPathsOf(workflowPath: string): Promise<string[]> {
  const wf = await readWorkflow(workflowPath);
  const dir = dirname(workflowPath);
  const out = new Set<string>();
  for (const step of wf.steps) {
    for (const raw of Object.values(step.pipeline?.models ?? {})) {
      const ref = parseReference(raw);
      const value = ref?.kind === 'variable' ? wf.variables[ref.name] : raw;
      const resolved = resolveModelPath(String(value), dir);
      if ('path' in resolved) out.add(resolved.path);
    }
  }
  return [...out];
}
