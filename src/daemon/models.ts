// The daemon's view of the sessions its runners hold: where each is loaded, who uses them, when
// they expire, what they cost, and what to evict when a new model would not fit. A budget covers
// every runner (or, with N%gpu, the runners of one GPU): eviction chooses across them. An entry is
// one session in one runner (a slot); a model has one unless dwd makes replicas. The runners own
// the sessions; this owns the policy. Status reports are built from snapshot(), a copy.
import { statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { sep } from 'node:path';
import { DwError } from '../protocol/errors.js';
import { describeChange, digestOf } from './model-identity.js';
import type { RunEvent } from '../protocol/messages.js';
import type { LoadedModelInfo, ModelReport } from '../runner/ipc.js';
import type { Plan, SessionOptionsSpec } from '../workflow/plan.js';
import type { Logger } from './log.js';

export const PINNED = -1;

export interface ModelEntry {
  key: string;
  /** The runner of the pool that holds it. */
  runner: number;
  path: string;
  /** Other files it was built from (an onnx graph's external data): watched, and named by dw clear, with it. */
  files: string[];
  role: string;
  /** Session options it was built with: what --prewarm loads it again with. */
  session: SessionOptionsSpec | null;
  provider: string;
  size_bytes: number;
  cost_bytes: number;
  load_ms: number;
  loaded_at: number;
  last_used: number;
  uses: number;
  /** -1: pinned; 0: unloaded right after its run. */
  keep_alive_ms: number;
  expires_at: number | null;
  workflows: Set<string>;
  /** Set when its file changed during a run: dropped as soon as that run ends. */
  stale: string | null;
  timer: NodeJS.Timeout | null;
}

export type ModelSnapshot = Omit<ModelEntry, 'timer' | 'workflows'> & { workflows: string[]; in_use: boolean };

export interface Eviction {
  at: number;
  key: string;
  path: string;
  reason: string;
  cost_bytes: number;
}

/**
 * What a runner's models count against: `scope` names the budget (`all`: one for every runner;
 * `cuda:N`: that GPU's, shared by the runners on it), `bytes` is its size.
 */
export interface Budget {
  scope: string;
  bytes: number;
}

export interface RegistryDeps {
  release: (runner: number, keys: string[]) => Promise<unknown>;
  /** What a runner actually holds, to reconcile after each run (a failed run may still have loaded). */
  loaded: (runner: number) => Promise<LoadedModelInfo[] | null>;
  log: Logger;
  /** The budget of a runner's models; null: none (no --max-memory, or a CPU runner under N%gpu). */
  budgetOf: (runner: number) => Budget | null;
  keepAliveMs: number;
  /** Called whenever the set of loaded models changed (the watcher follows it). */
  changed?: () => void;
}

/** Before a model was ever measured, its memory is estimated from its file size: weights plus arenas. */
export const COST_PER_FILE_BYTE = 2;

interface PlannedModel {
  key: string;
  path: string;
  files: string[];
  role: string;
  session: SessionOptionsSpec;
}

function onnxModels(plan: Plan): PlannedModel[] {
  const seen = new Map<string, PlannedModel>();
  for (const step of plan.steps)
    for (const m of step.models)
      if (m.kind === 'onnx') seen.set(m.key, { key: m.key, path: m.path, files: m.files ?? [], role: m.role, session: step.session });
  return [...seen.values()];
}

/** The bytes of a model's files (its graph and external data), 0 for those that are gone. */
async function sizeOf(m: { path: string; files?: string[] }): Promise<number> {
  const sizes = await Promise.all(
    [m.path, ...(m.files ?? [])].map((p) =>
      stat(p).then(
        (s) => s.size,
        () => 0,
      ),
    ),
  );
  return sizes.reduce((a, b) => a + b, 0);
}

/** Whether `paths` names this model: its file, one of its other files, or a folder it lies in (an export). */
function named(paths: Set<string>, m: { path: string; files?: string[] }): boolean {
  if (paths.has(m.path) || m.files?.some((f) => paths.has(f))) return true;
  for (const p of paths) if (m.path.startsWith(p.endsWith(sep) ? p : p + sep)) return true;
  return false;
}

/**
 * Where a session lives: a runner and a model key. One model may be loaded in more than one runner
 * (a replica, dwd --replicas auto); each copy is an entry of its own.
 */
export const slotOf = (runner: number, key: string) => `${runner}/${key}`;
const slotOfEntry = (e: { runner: number; key: string }) => slotOf(e.runner, e.key);

/** How a budget is named in messages: `all` goes without saying. */
const scopeOf = (b: Budget) => (b.scope === 'all' ? '' : ` of ${b.scope}`);

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
const basename = (p: string) => p.slice(p.lastIndexOf('/') + 1);

/** The same, at once: for a model a run just loaded (status reports must show it meanwhile). */
function sizeOfSync(m: { path: string; files?: string[] }): number {
  return [m.path, ...(m.files ?? [])].reduce((sum, p) => {
    try {
      return sum + statSync(p).size;
    } catch {
      return sum;
    }
  }, 0);
}

export class ModelRegistry {
  private readonly entries = new Map<string, ModelEntry>();
  /** Runs using each slot right now, loaded yet or not: never evicted, never expired while counted. */
  private readonly inFlight = new Map<string, { count: number; key: string; path: string; files: string[] }>();
  /** Estimated cost of models that runs in progress are loading (and where), until those runs end. */
  private readonly reserved = new Map<string, { cost: number; runner: number }>();
  /**
   * What each model costs: the largest of its measurements. A reload often measures less (memory
   * the allocator kept from the last load: cls 0 B against 2.9 MB fresh), and a budget decision
   * must not swing with that.
   */
  private readonly knownCost = new Map<string, number>();
  /**
   * Why a path's sessions were dropped (its file changed or vanished), told by the run that next
   * loads that path, and only if it does load it (a hit means nothing was reloaded).
   */
  private readonly notes = new Map<string, string>();
  /** The content (sha256) each model path was last loaded or used with: a run that loads other content says the file changed. */
  private readonly lastSha = new Map<string, string>();
  readonly evictions: Eviction[] = [];
  /** Bumped on every load or unload: a changed set of models resets the growth baseline. */
  generation = 0;

  constructor(private readonly deps: RegistryDeps) {}

  /** Pins the plan's loaded models for a run on `runner` and makes room under its budget for the rest. */
  async prepare(runner: number, plan: Plan): Promise<string[]> {
    const models = onnxModels(plan);
    const acquired = models.map((m) => slotOf(runner, m.key));
    for (const { key, path, files } of models) {
      const slot = slotOf(runner, key);
      this.inFlight.set(slot, { count: (this.inFlight.get(slot)?.count ?? 0) + 1, key, path, files });
      const e = this.entries.get(slot);
      if (e) this.clearTimer(e);
    }
    try {
      await this.makeRoom(
        runner,
        models.filter((m) => !this.entries.has(slotOf(runner, m.key))),
        new Set(acquired),
      );
    } catch (err) {
      // A run that never ran still touched its loaded models: they get their keep-alive back.
      this.unpin(acquired);
      for (const slot of acquired) {
        const e = this.entries.get(slot);
        if (e && !this.busy(slot)) this.schedule(e);
      }
      throw err;
    }
    return acquired;
  }

  /**
   * The runner's report of a session a run got: returns the event that says why the model is
   * loaded again, to go to the client before the run's own cache event, when that is so. Also
   * keeps what status reports show during the run (a model just loaded, its cost; uses).
   */
  noteModel(
    runner: number,
    e: ModelReport,
    m: { key: string; path: string; files?: string[]; role: string; session: SessionOptionsSpec; workflow: Plan['workflow'] },
  ): RunEvent | null {
    const sha = digestOf(m.key);
    const before = this.lastSha.get(m.path);
    const note = this.notes.get(m.path);
    this.notes.delete(m.path);
    this.lastSha.set(m.path, sha);
    const entry = this.entries.get(slotOf(runner, m.key));
    if (e.status === 'hit') {
      if (entry) entry.uses += 1;
      return null;
    }
    if (e.status !== 'loaded') return null;
    if (!entry) {
      this.generation += 1;
      const cost = this.remember(m.key, e.cost_bytes ?? 0);
      const now = Date.now();
      this.entries.set(slotOf(runner, m.key), {
        key: m.key,
        runner,
        path: m.path,
        files: m.files ?? [],
        role: m.role,
        session: m.session,
        provider: e.provider,
        size_bytes: sizeOfSync(m),
        cost_bytes: cost,
        load_ms: e.load_ms,
        loaded_at: now,
        last_used: now,
        uses: 1,
        keep_alive_ms: this.deps.keepAliveMs,
        expires_at: null,
        workflows: new Set([this.noteWorkflow(m.workflow)]),
        stale: null,
        timer: null,
      });
    }
    const reason = note ?? (before !== undefined && before !== sha ? describeChange(before, sha) : undefined);
    return reason ? { kind: 'cache', step: e.step, role: e.role, path: m.path, status: 'invalidated', reason } : null;
  }

  /** Records a measurement of a model's cost; returns the figure to use (the largest seen). */
  private remember(key: string, cost: number): number {
    const known = Math.max(cost, this.knownCost.get(key) ?? 0);
    this.knownCost.set(key, known);
    return known;
  }

  private async makeRoom(runner: number, missing: PlannedModel[], mine: Set<string>): Promise<void> {
    const budget = this.deps.budgetOf(runner);
    if (budget === null || missing.length === 0) return;
    let need = 0;
    const reserving = new Set<string>();
    for (const m of missing) {
      const cost = this.knownCost.get(m.key) ?? (await sizeOf(m)) * COST_PER_FILE_BYTE;
      const slot = slotOf(runner, m.key);
      this.reserved.set(slot, { cost, runner });
      reserving.add(slot);
      need += cost;
    }
    try {
      await this.evictFor(need, budget, mine, reserving);
    } catch (err) {
      for (const key of reserving) this.reserved.delete(key);
      throw err;
    }
  }

  /**
   * Evicts idle models under the same budget until `need` more fits: the least recently used first
   * (among equals, the quickest to load again), then those the others turn out to make room enough
   * without are kept: no model goes that did not have to.
   */
  private async evictFor(
    need: number,
    budget: Budget,
    mine: Set<string>,
    reserving: Set<string>,
    why = `evicted to fit ${mb(need)} under the ${mb(budget.bytes)} budget${scopeOf(budget)} (least recently used first)`,
  ): Promise<void> {
    const max = budget.bytes;
    const where = scopeOf(budget);
    if (need > max) {
      throw new DwError(
        'DW_ERR_NO_MEMORY',
        `the run needs about ${mb(need)} for models not loaded yet, more than the whole budget${where} of ${mb(max)} (dwd --max-memory)`,
        { need_bytes: need, budget_bytes: max, budget_scope: budget.scope },
      );
    }
    const { loaded, loading } = this.heldUnder(budget, reserving);
    const used = loaded.reduce((sum, e) => sum + e.cost_bytes, 0) + loading;
    const idle = loaded.filter((e) => !this.busy(slotOfEntry(e))).sort((a, b) => a.last_used - b.last_used || a.load_ms - b.load_ms);
    const fits = (freed: number) => used - freed + need <= max;
    const victims: ModelEntry[] = [];
    let freed = 0;
    for (const v of idle) {
      if (fits(freed)) break;
      victims.push(v);
      freed += v.cost_bytes;
    }
    if (!fits(freed)) {
      const own = loaded.filter((e) => mine.has(slotOfEntry(e)));
      const others = loaded.filter((e) => !mine.has(slotOfEntry(e)) && this.busy(slotOfEntry(e)));
      const sum = (xs: ModelEntry[]) => xs.reduce((s, e) => s + e.cost_bytes, 0);
      const held = [
        ...(own.length > 0 ? [`${mb(sum(own))} are models this run uses as well (${own.map((e) => basename(e.path)).join(', ')})`] : []),
        ...(others.length > 0 ? [`${mb(sum(others))} are models other runs are using`] : []),
        ...(loading > 0 ? [`${mb(loading)} are models other runs are loading`] : []),
      ];
      throw new DwError(
        'DW_ERR_NO_MEMORY',
        `the run needs about ${mb(need)} for models not loaded yet, but with every idle model evicted only ${mb(Math.max(0, max - (used - freed)))} of the ${mb(max)} budget${where} is free: ${held.join('; ')} (dwd --max-memory)`,
        {
          need_bytes: need,
          budget_bytes: max,
          budget_scope: budget.scope,
          own_bytes: sum(own),
          in_use_bytes: sum(others),
          loading_bytes: loading,
        },
      );
    }
    // The most valuable victims first (last chosen): keep each that the rest make room enough without.
    for (let i = victims.length - 1; i >= 0; i--) {
      const v = victims[i]!;
      if (fits(freed - v.cost_bytes)) {
        victims.splice(i, 1);
        freed -= v.cost_bytes;
      }
    }
    if (victims.length > 0) await this.drop(victims.map(slotOfEntry), why, true);
  }

  /** After a run, successful or not: records what the runner now holds and starts keep-alive timers. */
  async finish(runner: number, plan: Plan, acquired: string[], keepAliveMs: number | undefined): Promise<void> {
    this.unpin(acquired);
    const held = await this.deps.loaded(runner);
    if (held) await this.reconcile(runner, held);
    for (const slot of acquired) this.reserved.delete(slot);
    const ka = keepAliveMs ?? this.deps.keepAliveMs;
    const now = Date.now();
    for (const { key, role, session } of onnxModels(plan)) {
      const slot = slotOf(runner, key);
      const e = this.entries.get(slot);
      if (!e) continue;
      e.role = role;
      e.session = session;
      e.keep_alive_ms = ka;
      e.workflows.add(this.noteWorkflow(plan.workflow));
      e.last_used = now;
      if (e.stale !== null && !this.busy(slot)) await this.drop([slot], e.stale, false);
      else this.schedule(e);
    }
    await this.backUnderBudget(runner);
    this.deps.changed?.();
  }

  /**
   * A model loaded for the first time was estimated from its file size; measured, it may cost far
   * more (Silero VAD: 3.4 MB estimated, 29 MB measured) and leave the budget exceeded. Idle models
   * under that budget then go, least recently used first, until it holds again.
   */
  private async backUnderBudget(runner: number): Promise<void> {
    const budget = this.deps.budgetOf(runner);
    if (budget === null) return;
    const why = `evicted: models just loaded cost more than estimated, over the ${mb(budget.bytes)} budget${scopeOf(budget)} (least recently used first)`;
    // Not enough idle models to give back: the runs in progress hold the rest, and it is met once they end.
    await this.evictFor(0, budget, new Set(), new Set(), why).catch(() => {});
  }

  /** After a background load (--prewarm, recovery, a replaced runner): adopt what the runner now holds, with the default keep-alive unless told. */
  async adopt(
    runner: number,
    extra: Array<{ key: string; role: string; session: SessionOptionsSpec; workflows: string[]; keep_alive_ms?: number }>,
  ): Promise<void> {
    const held = await this.deps.loaded(runner);
    if (held) await this.reconcile(runner, held);
    for (const x of extra) {
      const e = this.entries.get(slotOf(runner, x.key));
      if (!e) continue;
      e.role = x.role;
      e.session = x.session;
      if (x.keep_alive_ms !== undefined) e.keep_alive_ms = x.keep_alive_ms;
      x.workflows.forEach((w) => e.workflows.add(w));
      this.schedule(e);
    }
    this.deps.changed?.();
  }

  private async reconcile(runner: number, held: LoadedModelInfo[]): Promise<void> {
    const keys = new Set(held.map((h) => h.key));
    for (const h of held) {
      const e = this.entries.get(slotOf(runner, h.key));
      if (e) {
        e.uses = h.uses;
        if (e.size_bytes === 0) e.size_bytes = await sizeOf(h);
        e.cost_bytes = this.remember(h.key, h.cost_bytes);
        continue;
      }
      const size = await sizeOf(h);
      this.generation += 1;
      this.entries.set(slotOf(runner, h.key), {
        key: h.key,
        runner,
        path: h.path,
        files: h.files ?? [],
        role: '',
        session: null,
        provider: h.provider,
        size_bytes: size,
        cost_bytes: this.remember(h.key, h.cost_bytes),
        load_ms: h.load_ms,
        loaded_at: Date.now(),
        last_used: h.last_used,
        uses: h.uses,
        keep_alive_ms: this.deps.keepAliveMs,
        expires_at: null,
        workflows: new Set(),
        stale: null,
        timer: null,
      });
    }
    for (const e of [...this.entries.values()]) if (e.runner === runner && !keys.has(e.key)) this.forget(slotOfEntry(e));
  }

  private unpin(slots: string[]): void {
    for (const slot of slots) {
      const f = this.inFlight.get(slot);
      if (f && f.count > 1) f.count -= 1;
      else this.inFlight.delete(slot);
    }
  }

  private busy(slot: string): boolean {
    return this.inFlight.has(slot);
  }

  private schedule(e: ModelEntry): void {
    this.clearTimer(e);
    if (this.busy(slotOfEntry(e)) || e.keep_alive_ms === PINNED) return;
    e.expires_at = Date.now() + e.keep_alive_ms;
    e.timer = setTimeout(() => {
      e.timer = null;
      if (!this.busy(slotOfEntry(e)) && this.entries.get(slotOfEntry(e)) === e)
        void this.drop([slotOfEntry(e)], `idle for its keep-alive of ${e.keep_alive_ms} ms`, false);
    }, e.keep_alive_ms);
    e.timer.unref();
  }

  private clearTimer(e: ModelEntry): void {
    if (e.timer) clearTimeout(e.timer);
    e.timer = null;
    e.expires_at = null;
  }

  private forget(slot: string): ModelEntry | undefined {
    const e = this.entries.get(slot);
    if (!e) return undefined;
    this.clearTimer(e);
    this.entries.delete(slot);
    this.generation += 1;
    return e;
  }

  /** Releases sessions (by slot: runner and key) in their runners and forgets them. */
  async drop(slots: string[], reason: string, eviction: boolean): Promise<ModelEntry[]> {
    const gone = slots.map((k) => this.forget(k)).filter((e): e is ModelEntry => e !== undefined);
    if (gone.length === 0) return gone;
    for (const e of gone) {
      this.deps.log.info({ key: e.key, path: e.path, cost_bytes: e.cost_bytes, reason }, eviction ? 'model evicted' : 'model unloaded');
      if (eviction) this.evictions.unshift({ at: Date.now(), key: e.key, path: e.path, reason, cost_bytes: e.cost_bytes });
    }
    this.evictions.splice(20);
    for (const runner of new Set(gone.map((e) => e.runner)))
      await this.deps.release(
        runner,
        gone.filter((e) => e.runner === runner).map((e) => e.key),
      );
    this.deps.changed?.();
    return gone;
  }

  /**
   * A model file, or one of its files (external data), changed or vanished: the sessions `keys`
   * names (those built from other content; null: every one built from the file) go now, or when
   * the run using them ends. The run that next loads each model's path says why.
   */
  async invalidate(path: string, keys: string[] | null, cause: string): Promise<ModelSnapshot[]> {
    const hit = [...this.entries.values()].filter(
      (e) => (e.path === path || e.files.includes(path)) && (keys === null || keys.includes(e.key)),
    );
    if (hit.length === 0) return [];
    const before = this.snapshot().filter((m) => hit.some((e) => e.key === m.key && e.runner === m.runner));
    for (const e of hit) this.notes.set(e.path, cause);
    for (const e of hit.filter((x) => this.busy(slotOfEntry(x)))) e.stale = cause;
    await this.drop(hit.filter((x) => !this.busy(slotOfEntry(x))).map(slotOfEntry), cause, false);
    return before;
  }

  /** A runner was replaced, or died: everything it held is gone. */
  reset(runner: number): void {
    for (const e of [...this.entries.values()]) if (e.runner === runner) this.forget(slotOfEntry(e));
    this.deps.changed?.();
  }

  /** The runners that hold this model (more than one: replicas). */
  runnersOf(key: string): number[] {
    return [...this.entries.values()].filter((e) => e.key === key).map((e) => e.runner);
  }

  /** The most a load of this model took, 0 if never measured: a replica is worth it when a run waits longer. */
  loadMsOf(key: string): number {
    return Math.max(0, ...[...this.entries.values()].filter((e) => e.key === key).map((e) => e.load_ms));
  }

  /**
   * Whether the models not loaded in `runner` fit under its budget without evicting anything, at
   * their measured cost (a replica's model has one), else the estimate from their size.
   */
  fitsWithoutEviction(runner: number, models: Array<{ key: string; path: string; files?: string[] }>): boolean {
    const budget = this.deps.budgetOf(runner);
    if (budget === null) return true;
    const need = models
      .filter((m) => !this.entries.has(slotOf(runner, m.key)))
      .reduce((sum, m) => sum + (this.knownCost.get(m.key) ?? sizeOfSync(m) * COST_PER_FILE_BYTE), 0);
    const { loaded, loading } = this.heldUnder(budget);
    return loaded.reduce((sum, e) => sum + e.cost_bytes, 0) + loading + need <= budget.bytes;
  }

  /**
   * What counts against `budget`: the models loaded under it at their measured cost, and what runs
   * are loading there now at its estimate (but the slots in `except`: a run's own).
   */
  private heldUnder(budget: Budget, except: Set<string> = new Set()): { loaded: ModelEntry[]; loading: number } {
    const counted = (runner: number) => this.deps.budgetOf(runner)?.scope === budget.scope;
    const loading = [...this.reserved]
      .filter(([slot, r]) => !except.has(slot) && counted(r.runner))
      .reduce((sum, [, r]) => sum + r.cost, 0);
    // A model being loaded counts at its estimate until its run ends, not twice.
    const loaded = [...this.entries.values()].filter((e) => !this.reserved.has(slotOfEntry(e)) && counted(e.runner));
    return { loaded, loading };
  }

  /** How many models runner `runner` holds. */
  modelsOn(runner: number): number {
    return [...this.entries.values()].filter((e) => e.runner === runner).length;
  }

  /**
   * A run goes to `runner`, and some of its models are loaded in another (a workflow whose models
   * were loaded by different runs in different runners): they are released there, so that no
   * model is ever loaded twice. The scheduler runs them nowhere else meanwhile.
   */
  async gather(keys: string[], runner: number): Promise<void> {
    if (keys.every((k) => this.entries.has(slotOf(runner, k)))) return;
    const elsewhere = [...this.entries.values()].filter(
      (e) => keys.includes(e.key) && e.runner !== runner && !this.entries.has(slotOf(runner, e.key)) && !this.busy(slotOfEntry(e)),
    );
    if (elsewhere.length > 0)
      await this.drop(elsewhere.map(slotOfEntry), `moved to runner ${runner}, where the rest of its run's models are`, false);
  }

  /** The keys of models from these files (or folders) that are loaded, or that runs are using or loading now. */
  keysFor(paths: Set<string>): string[] {
    const loaded = [...this.entries.values()].filter((e) => named(paths, e)).map((e) => e.key);
    const used = [...this.inFlight.values()].filter((f) => named(paths, f)).map((f) => f.key);
    return [...new Set([...loaded, ...used])];
  }

  /** The sessions (slots) of models built from these files, or from files in these folders (dw clear of an export). */
  slotsFor(paths: Set<string>): string[] {
    return [...this.entries.values()].filter((e) => named(paths, e)).map(slotOfEntry);
  }

  /** Whether a run in progress uses a model from one of these files (loaded already or being loaded). */
  pathsInUse(paths: Set<string>): boolean {
    return [...this.inFlight.values()].some((f) => named(paths, f));
  }

  /** The files to watch: models, their data, and the workflows using them that are on this host. */
  paths(): string[] {
    return [
      ...new Set(
        [...this.entries.values()].flatMap((e) => [e.path, ...e.files, ...[...e.workflows].filter((w) => !this.elsewhere.has(w))]),
      ),
    ];
  }

  /** Workflow paths of runs by content: files on a client's host, which the daemon lists but cannot watch. */
  private readonly elsewhere = new Set<string>();

  private noteWorkflow(workflow: Plan['workflow']): string {
    // The same path may be a file here too (one checkout on both hosts): a run from here makes it watched.
    if (workflow.on_client) this.elsewhere.add(workflow.path);
    else this.elsewhere.delete(workflow.path);
    return workflow.path;
  }

  hasPath(path: string): boolean {
    return [...this.entries.values()].some((e) => named(new Set([path]), e));
  }

  /** The budgets of all runners together (each GPU's once), for dw memory; null without one. */
  budgetTotal(runners: number): number | null {
    const scopes = new Map<string, number>();
    for (let i = 0; i < runners; i++) {
      const b = this.deps.budgetOf(i);
      if (b) scopes.set(b.scope, b.bytes);
    }
    return scopes.size === 0 ? null : [...scopes.values()].reduce((a, b) => a + b, 0);
  }

  snapshot(): ModelSnapshot[] {
    return [...this.entries.values()].map(({ timer: _t, workflows, ...rest }) => ({
      ...rest,
      workflows: [...workflows],
      in_use: this.busy(slotOfEntry(rest)),
    }));
  }
}
