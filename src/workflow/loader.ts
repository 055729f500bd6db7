// Reads, validates and resolves a workflow into a Plan. Everything that can be checked without a
// model is checked here, so a typo never costs a model load and bad input never reaches a runner.
import { access, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DwError } from '../protocol/errors.js';
import { readRegularFile, TooLarge, whyUnreadable } from '../media/read.js';
import { hostname } from 'node:os';
import type { FileSource } from './source.js';
import { argProblems } from '../pipelines/arguments.js';
import { CONTENT_NEEDS, PIPELINES, TASKS, isPluginType, pluginInfo, type StepTypeInfo } from '../pipelines/catalog.js';
import { ONE_KIND, workflowSchema, type Workflow, type VariableValue } from './schema.js';
import { collectReferences, jsonPath, parseReference, pickField, PREVIOUS, substitute } from './references.js';
import { resolveModelPath } from './model-paths.js';
import { jsonErrorOffset, lineCol } from './json-error.js';
import { AllowedRoots } from './roots.js';
import { fileArgPaths } from './file-args.js';
import type { Plan, PlanModel, PlanStep } from './plan.js';

export interface Problem {
  path: string;
  message: string;
}

const EXTENSIONS: Record<string, string> = {
  'application/json': 'json',
  'text/plain': 'txt',
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'audio/wav': 'wav',
  'application/x-npy': 'npy',
};

/**
 * A variable's value and the folder a relative path in it is relative to. A sub-workflow's
 * variable may be bound to an earlier step's result: then the value is that previous_result:
 * reference, left for the engine to resolve at run time.
 */
interface Bound {
  value: unknown;
  base: string;
}

/** JSON nesting a workflow may have: a tensor of the highest rank onnxruntime takes, inside a step, fits. */
const MAX_JSON_DEPTH = 64;

/** The JSON path of the first value nested deeper than `max`, or null; iterative, so depth cannot overflow it. */
function deeperThan(json: unknown, max: number): string | null {
  if (json === null || typeof json !== 'object') return null;
  const stack: Array<{ value: unknown; path: (string | number)[] }> = [{ value: json, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (path.length >= max) return jsonPath(path);
    // Only containers are followed: a tensor's million numbers cost no path each.
    const keys: Array<string | number> = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value as object);
    for (const k of keys) {
      const v = (value as Record<string | number, unknown>)[k];
      if (v !== null && typeof v === 'object') stack.push({ value: v, path: [...path, k] });
    }
  }
  return null;
}

/** At most this many workflow files deep, and this many steps in all: includes cannot run away. */
const MAX_DEPTH = 8;
const MAX_STEPS = 1000;

/**
 * A workflow file's size limit. Real ones are a few kB; parsing and checking one of 17 MB held the
 * daemon's thread for seconds, long enough for every other client to think it dead.
 */
export const MAX_WORKFLOW_BYTES = 1024 * 1024;

export async function readWorkflow(path: string, source: FileSource | null = null): Promise<Workflow> {
  let bytes: Buffer;
  try {
    bytes = source ? await source.read(path, MAX_WORKFLOW_BYTES) : await readRegularFile(path, MAX_WORKFLOW_BYTES);
  } catch (err) {
    if (err instanceof TooLarge)
      throw invalid(path, [
        { path: '$', message: `the file is ${err.size} bytes; a workflow file is at most ${MAX_WORKFLOW_BYTES} (1 MiB)` },
      ]);
    if (err instanceof DwError) throw err;
    throw new DwError('DW_ERR_FILE_NOT_FOUND', `cannot read workflow ${path}: ${whyUnreadable(err)}`, { path });
  }
  // UTF-16 (as some Windows editors save) would reach JSON.parse as NULs between the characters.
  if (bytes.includes(0))
    throw invalid(path, [{ path: '$', message: 'not UTF-8 text (it holds NUL bytes: saved as UTF-16?); save the workflow as UTF-8' }]);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw invalid(path, [
      { path: '$', message: 'not UTF-8 text (saved in another encoding, such as Latin-1?); save the workflow as UTF-8' },
    ]);
  }
  // Editors on Windows save UTF-8 with a byte order mark; JSON.parse refuses it, a person should not.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const msg = (err as Error).message;
    const offset = jsonErrorOffset(text);
    const at = lineCol(text, offset < 0 ? text.length : offset);
    throw new DwError('DW_ERR_WORKFLOW_INVALID', `${path}:${at.line}:${at.column}: not valid JSON: ${msg}`, {
      path,
      line: at.line,
      column: at.column,
      problems: [{ path: '$', message: msg }],
    });
  }
  // Checked before anything walks the value recursively (the schema, references): 3000 levels overflow the stack.
  const tooDeep = deeperThan(json, MAX_JSON_DEPTH);
  if (tooDeep) throw invalid(path, [{ path: tooDeep, message: `nested deeper than ${MAX_JSON_DEPTH} levels; a workflow needs far fewer` }]);
  const parsed = workflowSchema.safeParse(json);
  const problems: Problem[] = parsed.success
    ? semanticProblems(parsed.data)
    : unique([...parsed.error.issues.map((i) => ({ path: jsonPath(i.path), message: i.message })), ...semanticProblemsOfDraft(json)]);
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
  // The schema checks this only on a step that is otherwise valid; next to another problem of the step it would go unsaid.
  const shape = json.steps.flatMap((st: unknown, i: number) =>
    rec(st) && ['pipeline', 'task', 'workflow'].filter((k) => k in st).length !== 1
      ? [{ path: jsonPath(['steps', i]), message: ONE_KIND }]
      : [],
  );
  const steps = json.steps.map((st: unknown) => {
    if (!rec(st)) return { name: '', task: { type: '', arguments: {} } };
    const spec = (x: unknown) =>
      rec(x)
        ? { ...x, type: String(x.type ?? ''), arguments: rec(x.arguments) ? x.arguments : {}, models: rec(x.models) ? x.models : {} }
        : undefined;
    const workflow = rec(st.workflow)
      ? { ...st.workflow, path: String(st.workflow.path ?? ''), arguments: rec(st.workflow.arguments) ? st.workflow.arguments : {} }
      : undefined;
    return {
      ...st,
      name: String(st.name ?? ''),
      pipeline: spec(st.pipeline),
      workflow,
      task: st.pipeline || workflow ? undefined : (spec(st.task) ?? { type: '', arguments: {} }),
    };
  });
  try {
    // Type names that are missing or empty were already reported by the schema.
    return [
      ...shape,
      ...semanticProblems({ ...json, variables: rec(json.variables) ? json.variables : {}, steps } as Workflow).filter(
        (p) => !/unknown (pipeline|task) type ""/.test(p.message),
      ),
    ];
  } catch {
    return shape;
  }
}

/** Problems once each (the schema and the semantic checks can find the same one). */
function unique(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => !seen.has(`${p.path}\n${p.message}`) && seen.add(`${p.path}\n${p.message}`));
}

function invalid(path: string, problems: Problem[]): DwError {
  const list = problems.map((p) => `  ${p.path}: ${p.message}`).join('\n');
  return new DwError(
    'DW_ERR_WORKFLOW_INVALID',
    `${path} is not a valid workflow (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${list}`,
    { path, problems },
  );
}

type StepKind = 'pipeline' | 'task' | 'workflow';

function stepInfo(step: Workflow['steps'][number]): { info: StepTypeInfo | undefined; type: string; kind: StepKind } {
  if (step.workflow) return { info: { roles: [], fileArgs: [], summary: 'a sub-workflow' }, type: step.workflow.path, kind: 'workflow' };
  if (step.pipeline) {
    const type = step.pipeline.type;
    return { info: isPluginType(type) ? pluginInfo(step.pipeline.models) : PIPELINES[type], type, kind: 'pipeline' };
  }
  return { info: TASKS[step.task!.type], type: step.task!.type, kind: 'task' };
}

const isRuntimeRef = (v: unknown) => parseReference(v)?.kind === 'previous_result';

/** Checks the schema cannot express: names, types, roles and references. */
function semanticProblems(wf: Workflow): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  const declared = Object.keys(wf.variables);
  for (const [v, def] of Object.entries(wf.variables)) {
    if (parseReference(def)) problems.push({ path: jsonPath(['variables', v]), message: 'a default is a value, not a reference' });
  }
  wf.steps.forEach((step, i) => {
    const at = (...p: (string | number)[]) => jsonPath(['steps', i, ...p]);
    if (seen.has(step.name)) problems.push({ path: at('name'), message: `duplicate step name "${step.name}"` });
    const { info, type, kind } = stepInfo(step);
    const known = [...Object.keys(kind === 'pipeline' ? PIPELINES : TASKS), ...(kind === 'pipeline' ? ['./plugin.js'] : [])];
    if (!info) problems.push({ path: at(kind, 'type'), message: `unknown ${kind} type "${type}"; known: ${known.join(', ')}` });
    if (info && step.pipeline) {
      const roles = info.roles.map((r) => r.name);
      for (const role of Object.keys(step.pipeline.models)) {
        if (!roles.includes(role))
          problems.push({
            path: at('pipeline', 'models', role),
            message: `"${type}" has no model role "${role}"; roles: ${roles.join(', ')}`,
          });
      }
      for (const r of info.roles) {
        if (r.required && !(r.name in step.pipeline.models))
          problems.push({ path: at('pipeline', 'models'), message: `"${type}" needs a "${r.name}" model` });
      }
    }
    const args = (step.pipeline ?? step.task ?? step.workflow)!.arguments;
    const refs = [
      ...collectReferences(args, [kind, 'arguments']),
      ...(step.pipeline ? collectReferences(step.pipeline.models, ['pipeline', 'models']) : []),
      ...(step.workflow ? collectReferences(step.workflow.path, ['workflow', 'path']) : []),
    ];
    for (const { ref, path } of refs) {
      if (ref.kind === 'variable' && !declared.includes(ref.name)) {
        problems.push({ path: at(...path), message: `unknown variable "${ref.name}"; declared: ${declared.join(', ') || '(none)'}` });
      }
      if (
        ref.kind === 'previous_result' &&
        ((path[0] === 'workflow' && path[1] === 'path') || (path[0] === 'pipeline' && path[1] === 'models'))
      ) {
        problems.push({
          path: at(...path),
          message: 'model files and sub-workflow paths must be known before the run; they cannot come from previous_result:',
        });
        continue;
      }
      // "previous_result:sub/read" reaches into the sub-workflow step "sub"; checkOrder checks the rest.
      if (ref.kind === 'previous_result' && !seen.has(ref.step) && !(ref.step.includes('/') && seen.has(ref.step.split('/')[0]!))) {
        problems.push({
          path: at(...path),
          message: `"previous_result:${ref.step}" must name an earlier step; earlier steps: ${[...seen].join(', ') || '(none)'}`,
        });
      }
    }
    seen.add(step.name);
  });
  return problems;
}

/**
 * Applies --arg values, typed like the declared default (a number stays a number). Problems go to
 * `problems` (the variable keeps its default then), so they are reported with the workflow's others.
 */
export function bindVariables(
  wf: Workflow,
  workflowDir: string,
  args: Record<string, string>,
  cwd: string,
  problems?: DwError[],
): Record<string, Bound> {
  const found: DwError[] = [];
  const declared = Object.keys(wf.variables);
  const unknown = Object.keys(args).filter((k) => !declared.includes(k));
  if (unknown.length > 0) {
    found.push(
      new DwError(
        'DW_ERR_UNKNOWN_VARIABLE',
        `the workflow "${wf.id}" does not declare ${unknown.map((u) => `"${u}"`).join(', ')}; declared variables: ${declared.join(', ') || '(none)'}`,
        { unknown, declared },
      ),
    );
  }
  const bound: Record<string, Bound> = {};
  for (const [name, def] of Object.entries(wf.variables)) {
    bound[name] = { value: def, base: workflowDir };
    if (!Object.hasOwn(args, name)) continue;
    if (parseReference(args[name]) !== null) {
      found.push(
        new DwError(
          'DW_ERR_BAD_ARGUMENT',
          `--arg ${name}=${args[name]}: an --arg value is a literal; references (variable:, previous_result:) only work inside a workflow file`,
          { name },
        ),
      );
      continue;
    }
    try {
      bound[name] = { value: coerce(name, args[name]!, def), base: cwd };
    } catch (err) {
      if (!(err instanceof DwError)) throw err;
      found.push(err);
    }
  }
  if (!problems && found.length > 0) throw found[0];
  problems?.push(...found);
  return bound;
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function coerce(name: string, raw: string, def: VariableValue): VariableValue {
  if (typeof def === 'number') {
    // Decimal only: Number() would also take "0x10", "0b1", " 5 " and "" (as 0).
    const n = DECIMAL.test(raw) ? Number(raw) : Number.NaN;
    const bad = (why: string) =>
      new DwError('DW_ERR_BAD_ARGUMENT', `--arg ${name}=${raw}: "${name}" is a number (default ${def}), ${why}`, {
        name,
        expected: 'number',
        got: raw,
      });
    if (DECIMAL.test(raw) && !Number.isFinite(n)) throw bad('too large for a number');
    if (!Number.isFinite(n)) throw bad(`got "${raw}"; write a decimal number such as 0.8, 12 or 1e-3`);
    // Silently another number is worse than an error: 9007199254740993 would arrive as …992, 1e-400 as 0.
    if (/^[+-]?\d+$/.test(raw) && BigInt(raw) !== BigInt(n)) throw bad('a whole number beyond ±2^53 that a number cannot hold exactly');
    if (n === 0 && /[1-9]/.test(raw.replace(/[eE].*$/, ''))) throw bad('too small to tell from 0');
    return n;
  }
  if (typeof def === 'boolean') {
    if (/^(true|1|yes)$/i.test(raw)) return true;
    if (/^(false|0|no)$/i.test(raw)) return false;
    throw new DwError('DW_ERR_BAD_ARGUMENT', `--arg ${name}=${raw}: "${name}" is a boolean (true/false), got "${raw}"`, {
      name,
      expected: 'boolean',
      got: raw,
    });
  }
  return raw;
}

async function checkReadable(
  path: string,
  code: 'DW_ERR_MODEL_NOT_FOUND' | 'DW_ERR_FILE_NOT_FOUND',
  what: string,
  where = '',
): Promise<void> {
  try {
    // Side by side: each is a trip through libuv's thread pool, and a run checks every file it names.
    const [st] = await Promise.all([stat(path), access(path, constants.R_OK)]);
    if (!st.isFile()) throw new Error('not a regular file');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new DwError(code, `${what} ${path} cannot be read${where} (${why})`, { path });
  }
}

function setField(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (const k of path.slice(0, -1)) cur = cur[k] as Record<string, unknown>;
  cur[path.at(-1)!] = value;
}

/** A sub-workflow argument typed like the variable's default, as an --arg would be. */
function coerceValue(name: string, value: unknown, def: VariableValue): unknown {
  if (typeof value === 'string' && typeof def !== 'string' && def !== null) return coerce(name, value, def);
  if (def !== null && value !== null && typeof value !== typeof def) {
    throw new DwError(
      'DW_ERR_BAD_ARGUMENT',
      `sub-workflow argument "${name}" is a ${typeof def} (default ${JSON.stringify(def)}), got ${JSON.stringify(value)}`,
      { name, expected: typeof def },
    );
  }
  return value;
}

interface LoadContext {
  roots: AllowedRoots;
  plugins: boolean;
  /** The top workflow's id: default output names are `<id>-<step>`, sub-workflow steps included. */
  id: string;
  /** Each sub-workflow file is read once per load, however often it is included. */
  files: Map<string, Promise<Workflow>>;
  count: number;
  /** Every problem is collected, so one `dw validate` (or a failed run) names them all at once. */
  problems: DwError[];
  /** The client's files by content, or null: the daemon opens the paths itself. */
  source: FileSource | null;
}

async function checkFile(
  ctx: LoadContext,
  file: string,
  code: 'DW_ERR_MODEL_NOT_FOUND' | 'DW_ERR_FILE_NOT_FOUND',
  what: string,
): Promise<boolean> {
  // A model of a run by content is still a path on this host: say so when it is not here.
  const where = ctx.source && code === 'DW_ERR_MODEL_NOT_FOUND' ? ` on the daemon's host ${hostname()}` : '';
  // Both at once, but a path outside the roots is refused as such, whatever its state.
  const [allowed, readable] = await Promise.allSettled([ctx.roots.check(file, what), checkReadable(file, code, what, where)]);
  try {
    if (allowed.status === 'rejected') throw allowed.reason;
    if (readable.status === 'rejected') throw readable.reason;
    return true;
  } catch (err) {
    if (!(err instanceof DwError)) throw err;
    ctx.problems.push(err);
    return false;
  }
}

/** A client's file fetched by content: the copy's path, or the path itself with the problem noted. */
async function provided(ctx: LoadContext, file: string, what: string, ext?: string): Promise<string> {
  try {
    return await ctx.source!.provide(file, what, ext);
  } catch (err) {
    if (!(err instanceof DwError)) throw err;
    ctx.problems.push(err);
    return file;
  }
}

/**
 * The models of a pipeline whose roles name a folder layout (stable-diffusion's export): the
 * folders are checked against --allowed-roots before anything in them is read, then each graph,
 * its external-data files and each text file are checked like any model file.
 */
async function layoutModels(
  ctx: LoadContext,
  step: string,
  layout: NonNullable<StepTypeInfo['layout']>,
  given: Record<string, string>,
  args: Record<string, unknown>,
): Promise<PlanModel[]> {
  for (const [role, path] of Object.entries(given)) {
    try {
      await ctx.roots.check(path, `step "${step}": model "${role}"`);
    } catch (err) {
      if (!(err instanceof DwError)) throw err;
      ctx.problems.push(err);
      return [];
    }
  }
  const { models, problems } = layout(given, args);
  for (const p of problems) ctx.problems.push(new DwError('DW_ERR_MODEL_NOT_FOUND', `step "${step}": ${p}`, { step }));
  const out: PlanModel[] = [];
  for (const m of models) {
    await checkFile(ctx, m.path, 'DW_ERR_MODEL_NOT_FOUND', `step "${step}": model "${m.role}"`);
    for (const f of m.files ?? []) await checkFile(ctx, f, 'DW_ERR_MODEL_NOT_FOUND', `step "${step}": external data of "${m.role}"`);
    out.push({ role: m.role, kind: m.kind, path: m.path, key: '', ...(m.files ? { files: m.files } : {}) });
  }
  return out;
}

function runtimePath(step: string, what: string): DwError {
  return new DwError(
    'DW_ERR_WORKFLOW_INVALID',
    `step "${step}": ${what} cannot come from a step result (previous_result:); it must be known before the run`,
    { step },
  );
}

/** Every previous_result: reference names a step that runs earlier (inlined sub-steps included). */
function checkOrder(steps: PlanStep[], path: string, ctx: LoadContext): void {
  const done = new Set<string>();
  const problems: Problem[] = [];
  for (const step of steps) {
    for (const { ref, path: at } of collectReferences(step.arguments)) {
      if (ref.kind === 'previous_result' && !done.has(ref.step))
        problems.push({ path: `step "${step.name}" ${jsonPath(at)}`, message: `previous_result:${ref.step} names no earlier step` });
    }
    done.add(step.name);
  }
  const names = new Map<string, string>();
  for (const step of steps) {
    if (!step.save) continue;
    const other = names.get(step.save.name);
    if (other)
      problems.push({
        path: `step "${step.name}"`,
        message: `saves to ${step.save.name}, as step "${other}" does; give one of them another file name`,
      });
    names.set(step.save.name, step.name);
  }
  if (problems.length > 0) ctx.problems.push(invalid(path, problems));
}

/**
 * The plan steps of one workflow. A sub-workflow's steps are inlined under "STEP/" names, with
 * their previous_result references renamed to match, followed by the workflow step itself, whose
 * result gathers theirs: the daemon and the engine then see one flat list of steps. A step with a
 * problem adds it to the context and the next step is planned all the same: one report has them all.
 */
async function planSteps(
  wf: Workflow,
  path: string,
  vars: Record<string, Bound>,
  prefix: string,
  stack: string[],
  ctx: LoadContext,
): Promise<PlanStep[]> {
  const steps: PlanStep[] = [];
  for (const [index, step] of wf.steps.entries()) {
    try {
      steps.push(...(await planStep(wf, index, path, vars, prefix, stack, ctx)));
    } catch (err) {
      if (!(err instanceof DwError) || err.details?.fatal) throw err;
      ctx.problems.push(err);
      // A stand-in, so later steps that refer to it are not reported as well; the plan never runs.
      steps.push({
        name: prefix + step.name,
        kind: 'workflow',
        type: '',
        models: [],
        session: { providers: ['cpu'] },
        arguments: {},
        save: null,
      });
    }
  }
  return steps;
}

/** Problems of a step's literal arguments, and of what it saves, by the same rules as its run. */
function stepProblems(
  name: string,
  type: string,
  info: StepTypeInfo,
  args: Record<string, unknown>,
  save: PlanStep['save'],
  at: string,
): DwError[] {
  const problems: DwError[] = [];
  const owner = `step "${name}": ${type}`;
  // A value that comes from an earlier step is known at the run only; the run checks it then.
  const pending = (v: unknown) => collectReferences(v).some((r) => r.ref.kind === 'previous_result');
  if (info.args) {
    const found = argProblems(owner, args, info.args, pending);
    problems.push(...found);
    // As the run sees them: defaults filled in.
    const filled = {
      ...Object.fromEntries(
        Object.entries(info.args)
          .filter(([, sp]) => 'default' in sp)
          .map(([k, sp]) => [k, sp.default]),
      ),
      ...args,
    };
    const why = found.length === 0 ? info.rule?.(filled) : null;
    if (why) problems.push(new DwError('DW_ERR_BAD_ARGUMENT', `${owner}: ${why}`, { step: name }));
  }
  if (save) {
    const produced = info.saves?.(args);
    const needs = CONTENT_NEEDS[save.content_type];
    if (produced !== undefined && produced !== save.content_type) {
      problems.push(
        new DwError(
          'DW_ERR_WORKFLOW_INVALID',
          `${at}.result.content_type: step "${name}" (${type}) makes ${produced}, but its result is to be saved as ${save.content_type}; make them agree`,
          { step: name },
        ),
      );
    } else if (produced === undefined && needs && info.produces && info.produces !== needs) {
      const fits = Object.entries(CONTENT_NEEDS)
        .filter(([, k]) => k === null || k === info.produces)
        .map(([c]) => c);
      problems.push(
        new DwError(
          'DW_ERR_WORKFLOW_INVALID',
          `${at}.result.content_type: ${save.content_type} needs ${A[needs]}, but a ${type} step gives ${A[info.produces]}; it can be saved as ${fits.join(' or ')}`,
          { step: name },
        ),
      );
    }
  }
  return problems;
}

const A: Record<string, string> = { text: 'text', image: 'an image', audio: 'audio', tensor: 'a tensor' };

/** The plan steps one step of a workflow makes: itself, or a sub-workflow's steps and then itself. */
async function planStep(
  wf: Workflow,
  index: number,
  path: string,
  vars: Record<string, Bound>,
  prefix: string,
  stack: string[],
  ctx: LoadContext,
): Promise<PlanStep[]> {
  const step = wf.steps[index]!;
  const dir = dirname(path);
  // Variables become their values; references to earlier steps get this workflow's prefix. A
  // variable bound to a parent's previous_result is inserted as it is (already in the parent's names).
  const bind = (value: unknown) =>
    substitute(value, (ref, raw) => (ref.kind === 'variable' ? vars[ref.name]!.value : PREVIOUS + prefix + raw.slice(PREVIOUS.length)));
  const { info, type, kind } = stepInfo(step);
  const name = prefix + step.name;
  const spec = (step.pipeline ?? step.task ?? step.workflow)!;
  const argsOut = bind(spec.arguments) as Record<string, unknown>;
  const save = step.result?.save ?? (info!.saves ? true : false);
  const contentType = step.result?.content_type ?? info!.saves?.(argsOut) ?? 'application/json';
  const saveSpec = save
    ? {
        name: typeof save === 'string' ? save : `${ctx.id}-${name.replaceAll('/', '-')}.${EXTENSIONS[contentType]}`,
        content_type: contentType,
      }
    : null;
  if (++ctx.count > MAX_STEPS)
    throw new DwError('DW_ERR_WORKFLOW_INVALID', `${path}: the workflow and its sub-workflows have more than ${MAX_STEPS} steps`, {
      path,
      fatal: true,
    });

  if (step.workflow) {
    const subRaw = bind(step.workflow.path);
    if (isRuntimeRef(subRaw)) throw runtimePath(name, 'its workflow path');
    if (typeof subRaw !== 'string')
      throw invalid(path, [{ path: `$.steps[${index}].workflow.path`, message: `must be a file path, got ${JSON.stringify(subRaw)}` }]);
    const subRef = parseReference(step.workflow.path);
    const subPath = resolve(subRef?.kind === 'variable' ? vars[subRef.name]!.base : dir, subRaw);
    if (stack.includes(subPath))
      throw new DwError(
        'DW_ERR_WORKFLOW_INVALID',
        `${path}: step "${step.name}" runs ${subPath}, which is already running it (${[...stack, subPath].join(' → ')})`,
        { path, cycle: [...stack, subPath] },
      );
    if (stack.length >= MAX_DEPTH)
      throw new DwError('DW_ERR_WORKFLOW_INVALID', `${path}: step "${step.name}": sub-workflows nest deeper than ${MAX_DEPTH}`, { path });
    if (!ctx.source) await ctx.roots.check(subPath, `step "${name}": workflow`);
    if (!ctx.files.has(subPath)) ctx.files.set(subPath, readWorkflow(subPath, ctx.source));
    const sub = await ctx.files.get(subPath)!.catch((err: unknown) => {
      // The file's own error names the file; which step includes it is the other half.
      if (!(err instanceof DwError)) throw err;
      throw new DwError(err.code, `step "${name}": ${err.message}`, { ...err.details, step: name });
    });
    const declared = Object.keys(sub.variables);
    const unknown = Object.keys(argsOut).filter((k) => !declared.includes(k));
    if (unknown.length > 0) {
      throw new DwError(
        'DW_ERR_UNKNOWN_VARIABLE',
        `step "${name}": ${subPath} does not declare ${unknown.map((u) => `"${u}"`).join(', ')}; declared variables: ${declared.join(', ') || '(none)'}`,
        { step: name, unknown, declared },
      );
    }
    const subVars: Record<string, Bound> = {};
    for (const [v, def] of Object.entries(sub.variables)) {
      if (!(v in argsOut)) {
        subVars[v] = { value: def, base: dirname(subPath) };
        continue;
      }
      const raw = parseReference(step.workflow.arguments[v]);
      const base = raw?.kind === 'variable' ? vars[raw.name]!.base : dir;
      subVars[v] = { value: isRuntimeRef(argsOut[v]) ? argsOut[v] : coerceValue(v, argsOut[v], def), base };
    }
    // A sub-workflow step's "cache" holds for its steps that do not say otherwise.
    const inlined = await planSteps(sub, subPath, subVars, `${name}/`, [...stack, subPath], ctx);
    return [
      ...(step.cache === undefined ? inlined : inlined.map((s) => ({ ...s, cache: s.cache ?? step.cache }))),
      {
        name,
        kind,
        type,
        models: [],
        session: { providers: ['cpu'] },
        arguments: Object.fromEntries(sub.steps.map((s) => [s.name, `${PREVIOUS}${name}/${s.name}`])),
        save: saveSpec,
      },
    ];
  }

  const models: PlanModel[] = [];
  const given: Record<string, string> = {};
  for (const [role, raw] of Object.entries(step.pipeline?.models ?? {})) {
    const ref = parseReference(raw);
    const bound = ref?.kind === 'variable' ? vars[ref.name]! : { value: raw, base: dir };
    if (isRuntimeRef(bound.value)) {
      ctx.problems.push(runtimePath(name, `model "${role}"`));
      continue;
    }
    const resolved = resolveModelPath(String(bound.value), bound.base, ctx.source !== null);
    if ('error' in resolved) {
      ctx.problems.push(
        new DwError('DW_ERR_MODEL_NOT_FOUND', `step "${name}", model "${role}": ${resolved.error}`, { step: name, role, ref: raw }),
      );
      continue;
    }
    if (info!.layout) {
      given[role] = resolved.path;
      continue;
    }
    await checkFile(ctx, resolved.path, 'DW_ERR_MODEL_NOT_FOUND', `step "${name}": model "${role}"`);
    const kindOf = info!.roles.find((r) => r.name === role)!.kind as PlanModel['kind'];
    models.push({ role, kind: kindOf, path: resolved.path, key: '' });
  }
  if (info!.layout) models.push(...(await layoutModels(ctx, name, info!.layout, given, argsOut)));
  for (const pattern of info!.fileArgs) {
    for (const at of fileArgPaths(argsOut, pattern.split('.'))) {
      const value = pickField(argsOut, at) as string;
      if (isRuntimeRef(value)) continue;
      const raw = parseReference(pickField(spec.arguments, at));
      const file = resolve(raw?.kind === 'variable' ? vars[raw.name]!.base : dir, value);
      const what = `step "${name}": input "${at.join('.')}"`;
      setField(argsOut, at, ctx.source ? await provided(ctx, file, what) : file);
      if (!ctx.source) await checkFile(ctx, file, 'DW_ERR_FILE_NOT_FOUND', what);
    }
  }
  ctx.problems.push(...stepProblems(name, type, info!, argsOut, saveSpec, `${path}: $.steps[${index}]`));
  let module: PlanStep['module'];
  if (isPluginType(type)) {
    if (!ctx.plugins)
      throw new DwError(
        'DW_ERR_PLUGIN',
        `step "${name}": plugin pipelines (${type}) are off in this daemon: a plugin runs any code with the daemon's rights (dwd --plugins on allows them; with --allowed-roots they are off unless so)`,
        { step: name },
      );
    const what = `step "${name}": plugin module`;
    module = { path: ctx.source ? await provided(ctx, resolve(dir, type), what, '.mjs') : resolve(dir, type), key: '' };
    if (!ctx.source) await checkFile(ctx, module.path, 'DW_ERR_FILE_NOT_FOUND', what);
  }
  return [
    {
      name,
      kind,
      type,
      models,
      ...(module ? { module } : {}),
      session: {
        providers: step.pipeline?.providers ?? ['cpu'],
        intra_op_threads: step.pipeline?.options.intra_op_threads,
        graph_optimization: step.pipeline?.options.graph_optimization,
        intra_op_spinning: step.pipeline?.options.intra_op_spinning,
        graph_rewrites: step.pipeline?.options.graph_rewrites,
      },
      arguments: argsOut,
      save: saveSpec,
      ...(step.cache !== undefined ? { cache: step.cache } : {}),
    },
  ];
}

/** Reads, validates and resolves a workflow, checking every model and input file it names. */
export async function loadPlan(
  workflowPath: string,
  args: Record<string, string>,
  cwd: string,
  roots: AllowedRoots = new AllowedRoots(null),
  opts: { plugins?: boolean; source?: FileSource | null } = {},
): Promise<Plan> {
  const path = resolve(cwd, workflowPath);
  const source = opts.source ?? null;
  // Before reading: a refused file must not even be parsed (its content would show in errors).
  // A file sent by content is not opened here, so the roots (paths this daemon opens) do not apply.
  if (!source) await roots.check(path, 'workflow');
  const wf = await readWorkflow(path, source);
  const ctx: LoadContext = { roots, plugins: opts.plugins ?? true, id: wf.id, files: new Map(), count: 0, problems: [], source };
  const vars = bindVariables(wf, dirname(path), args, cwd, ctx.problems);
  const steps = await planSteps(wf, path, vars, '', [path], ctx);
  checkOrder(steps, path, ctx);
  const { problems } = ctx;
  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1) {
    // The first problem's code decides the exit code; the message lists them all.
    const lines = problems.map((e) => `  - ${e.message.replaceAll('\n', '\n    ')}`);
    throw new DwError(problems[0]!.code, `${path}: ${problems.length} problems:\n${lines.join('\n')}`, {
      problems: problems.map((e) => e.toPayload()),
    });
  }
  return {
    workflow: { id: wf.id, path, ...(source ? { on_client: true as const } : {}) },
    variables: Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, v.value])),
    steps,
  };
}

/**
 * The model files a workflow names (with variables at their defaults), for `dw clear WORKFLOW`.
 * Unlike loadPlan it does not require the inputs or the models to exist: clearing must work on a
 * workflow whose sample image was moved, or whose model was deleted.
 */
export async function modelPathsOf(workflowPath: string, depth = 0): Promise<string[]> {
  const wf = await readWorkflow(workflowPath);
  const dir = dirname(workflowPath);
  const out = new Set<string>();
  const valueOf = (raw: string) => {
    const ref = parseReference(raw);
    return String(ref?.kind === 'variable' ? wf.variables[ref.name] : raw);
  };
  for (const step of wf.steps) {
    for (const raw of Object.values(step.pipeline?.models ?? {})) {
      const resolved = resolveModelPath(valueOf(raw), dir);
      if ('path' in resolved) out.add(resolved.path);
    }
    if (step.workflow && depth < MAX_DEPTH) {
      for (const p of await modelPathsOf(resolve(dir, valueOf(step.workflow.path)), depth + 1).catch(() => [])) out.add(p);
    }
  }
  return [...out];
}
