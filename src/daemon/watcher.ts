// Watches the files behind loaded models. A model file replaced in place, renamed over, or
// rewritten by an editor's backup-and-write is confirmed by its hash once writes settle, and
// exactly the sessions built from it are dropped before the next run asks. Workflow files are
// watched too, but an edit to one drops nothing: models it no longer names expire by keep-alive.
import { existsSync } from 'node:fs';
import { watch, type FSWatcher } from 'chokidar';
import type { FileHasher } from './hashing.js';
import { describeChange, digestOf, modelDigest } from './model-identity.js';
import type { Logger } from './log.js';
import type { ModelRegistry, ModelSnapshot } from './models.js';

export interface WatcherDeps {
  registry: ModelRegistry;
  hasher: FileHasher;
  log: Logger;
  /** Called after models were dropped because a file of theirs changed (for --prewarm), with their new digests. */
  changed?: (path: string, dropped: Array<ModelSnapshot & { digest: string }>) => void;
  /** How long writes must pause before a change is confirmed. */
  settleMs?: number;
}

export class ModelWatcher {
  private readonly watcher: FSWatcher;
  private readonly watched = new Set<string>();
  private readonly pending = new Map<string, Promise<void>>();
  private readonly settleMs: number;

  constructor(private readonly deps: WatcherDeps) {
    const settle = (this.settleMs = deps.settleMs ?? 200);
    this.watcher = watch([], {
      ignoreInitial: true,
      // atomic: an unlink followed by an add within the window is reported as one change (rename over, editor saves).
      atomic: true,
      awaitWriteFinish: { stabilityThreshold: settle, pollInterval: Math.max(10, Math.round(settle / 4)) },
    });
    for (const ev of ['add', 'change', 'unlink'] as const) this.watcher.on(ev, (path: string) => this.onEvent(ev, path));
    this.watcher.on('error', (err) => deps.log.warn({ err: String(err) }, 'file watcher error'));
  }

  /** Watches exactly these paths (models and workflows behind loaded sessions). */
  sync(paths: string[]): void {
    const want = new Set(paths);
    const add = [...want].filter((p) => !this.watched.has(p));
    const remove = [...this.watched].filter((p) => !want.has(p));
    if (add.length) this.watcher.add(add);
    if (remove.length) this.watcher.unwatch(remove);
    for (const p of add) this.watched.add(p);
    for (const p of remove) this.watched.delete(p);
  }

  private onEvent(ev: 'add' | 'change' | 'unlink', path: string): void {
    // Serialise per path: a burst of events is checked once each, in order.
    const prev = this.pending.get(path) ?? Promise.resolve();
    const next = prev
      .then(() => this.check(ev, path))
      .catch((err: unknown) => this.deps.log.warn({ err: String(err), path }, 'checking a changed file failed'));
    this.pending.set(path, next);
    void next.finally(() => this.pending.get(path) === next && this.pending.delete(path));
  }

  private async check(ev: string, path: string): Promise<void> {
    const { registry, hasher, log } = this.deps;
    if (!registry.hasPath(path)) {
      log.info({ path, event: ev }, 'workflow file changed: models it no longer names expire by keep-alive');
      return;
    }
    if (ev === 'unlink') {
      // An editor moves the old file away and writes the new one: give the new one time to appear.
      await new Promise((r) => setTimeout(r, 2 * this.settleMs));
    }
    if (!existsSync(path)) {
      const dropped = await registry.invalidate(path, null, 'model file deleted');
      log.info({ path, sessions: dropped.length }, 'model file deleted: sessions dropped');
      return;
    }
    // A graph's identity covers its external-data files: a change to either is checked the same way.
    const stale: Array<ModelSnapshot & { digest: string }> = [];
    for (const m of registry.snapshot().filter((x) => x.path === path || x.files.includes(path))) {
      const digest = await modelDigest(hasher, m);
      if (digestOf(m.key) !== digest) stale.push({ ...m, digest });
    }
    if (stale.length === 0) {
      log.info({ path }, 'model file touched, content unchanged: sessions kept');
      return;
    }
    const cause = describeChange(digestOf(stale[0]!.key), stale[0]!.digest);
    // Only sessions of other content go: one a run already loaded from the new file stays.
    const dropped = new Set(
      (
        await registry.invalidate(
          path,
          stale.map((m) => m.key),
          cause,
        )
      ).map((m) => m.key),
    );
    log.info({ path, sessions: dropped.size, cause }, 'model file changed: sessions dropped');
    this.deps.changed?.(
      path,
      stale.filter((m) => dropped.has(m.key)),
    );
  }

  /** Resolves when every change seen so far has been checked (tests, shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.pending.values()]);
  }

  close(): Promise<void> {
    return this.watcher.close();
  }
}
