// onnxruntime sessions keyed by (model sha256, session options), and text assets keyed by sha256.
// Keys come from the daemon, which memoises the hashes; the runner only trusts and caches them.
import { readFile, stat } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { DwError } from '../protocol/errors.js';
import type { PlanModel, SessionOptionsSpec } from '../workflow/plan.js';
import { rewriteGraph } from './graph-rewrite.js';
import { candidateProviders, providerEntry } from './providers.js';
import { gpuMemoryOfPid } from '../host/nvidia.js';
import type { LoadedModelInfo } from './ipc.js';

interface Made {
  session: ort.InferenceSession;
  provider: string;
  load_ms: number;
  cost_bytes: number;
}

export interface Loaded extends Made {
  cache: 'hit' | 'loaded';
}

interface Entry {
  path: string;
  files?: string[];
  pending: Promise<Made>;
  made?: Made;
  uses: number;
  last_used: number;
}

/**
 * Spinning is off by default: onnxruntime's operator threads otherwise busy-wait after each
 * operator, and every session has its own pool, so after det the det pool still spins while cls
 * and rec run, on the same 2 cores. Off, the OCR pipeline ran 16% faster here; a pipeline that
 * calls one small model many times (VAD) is faster with it on, and its workflows say so (README,
 * Benchmarks: session setup).
 */
export function sessionOptions(spec: SessionOptionsSpec, provider: string): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [providerEntry(provider)],
    graphOptimizationLevel: spec.graph_optimization ?? 'all',
    ...(spec.intra_op_threads ? { intraOpNumThreads: spec.intra_op_threads } : {}),
    extra: { session: { intra_op: { allow_spinning: spec.intra_op_spinning ? '1' : '0' } } },
  };
}

export type LogFn = (level: 'info' | 'warn', message: string) => void;

/**
 * Larger files load from their path, untouched: the rewrite holds the file and its copy in memory
 * at once, and the chains it fuses are a mobile network's (PP-OCR's models are 2-11 MB).
 */
const REWRITE_MAX_BYTES = 256 * 1024 * 1024;

/** The model's bytes after dw's graph rewrite (graph-rewrite.ts), or null to load the file as it is. */
async function rewritten(model: PlanModel, log: LogFn): Promise<Uint8Array | null> {
  let bytes: Buffer;
  try {
    if ((await stat(model.path)).size > REWRITE_MAX_BYTES) return null;
    bytes = await readFile(model.path);
  } catch {
    return null; // left to onnxruntime, whose error the load reports as it did before
  }
  let result: ReturnType<typeof rewriteGraph>;
  try {
    result = rewriteGraph(bytes);
  } catch (err) {
    log('warn', `${model.path}: graph rewrite failed, loading the file as it is: ${(err as Error).message}`);
    return null;
  }
  if (result)
    log(
      'info',
      `${model.path}: graph rewrites: ${result.hardSwish} hard-swish chains as x*HardSigmoid(x), ${result.perChannel} scalar affines per channel`,
    );
  return result?.bytes ?? null;
}

export class SessionCache {
  private readonly sessions = new Map<string, Entry>();
  private readonly texts = new Map<string, Promise<string>>();

  constructor(private readonly log: LogFn) {}

  async session(model: PlanModel, spec: SessionOptionsSpec): Promise<Loaded> {
    let entry = this.sessions.get(model.key);
    const cache = entry ? 'hit' : 'loaded';
    if (!entry) {
      entry = {
        path: model.path,
        ...(model.files ? { files: model.files } : {}),
        pending: this.load(model, spec),
        uses: 0,
        last_used: Date.now(),
      };
      this.sessions.set(model.key, entry);
      // A failed load must not poison the cache: the next run tries again.
      entry.pending.catch(() => this.sessions.delete(model.key));
    }
    const got = await entry.pending;
    entry.made = got;
    entry.uses += 1;
    entry.last_used = Date.now();
    return cache === 'hit' ? { ...got, load_ms: 0, cost_bytes: 0, cache } : { ...got, cache };
  }

  private async load(model: PlanModel, spec: SessionOptionsSpec): Promise<Made> {
    const { tryOrder, skipped, offDevice } = candidateProviders(spec.providers);
    if (offDevice.length > 0) this.log('info', `${model.path}: provider ${offDevice.join(', ')} skipped on this CPU runner`);
    if (skipped.length > 0) this.log('info', `${model.path}: provider ${skipped.join(', ')} not installed, skipped`);
    const source = spec.graph_rewrites === false ? null : await rewritten(model, this.log);
    const failures: string[] = [];
    for (const provider of tryOrder) {
      const t0 = performance.now();
      const rss0 = process.memoryUsage.rss();
      // On a GPU provider the weights live in GPU memory: its growth is the cost, where nvidia-smi tells.
      const gpu0 = provider === 'cpu' ? null : gpuMemoryOfPid(process.pid);
      try {
        const options = sessionOptions(spec, provider);
        const session = await this.create(model, source, options);
        // Loads run one at a time within a run, so the growth across one is that session's cost.
        const gpu1 = gpu0 === null ? null : gpuMemoryOfPid(process.pid);
        const cost_bytes = gpu0 !== null && gpu1 !== null ? gpu1 - gpu0 : process.memoryUsage.rss() - rss0;
        return { session, provider, load_ms: Math.round(performance.now() - t0), cost_bytes: Math.max(0, cost_bytes) };
      } catch (err) {
        failures.push(`${provider}: ${(err as Error).message}`);
        // The last one's failure is the load's error, told to the run; only a fallback is worth a log line.
        if (provider !== tryOrder.at(-1))
          this.log('warn', `${model.path}: loading with ${provider} failed, trying the next provider: ${(err as Error).message}`);
      }
    }
    throw new DwError(
      'DW_ERR_MODEL_LOAD',
      `cannot load ${model.path} with any provider (${tryOrder.join(', ')}):\n  ${failures.join('\n  ')}`,
      { path: model.path, failures },
    );
  }

  /**
   * A session of the rewritten bytes, or of the file when there are none. Should onnxruntime refuse
   * the rewritten graph where the file itself loads, the file is used, and the log says so: a
   * rewrite must never cost a model that loads without it.
   */
  private async create(
    model: PlanModel,
    source: Uint8Array | null,
    options: ort.InferenceSession.SessionOptions,
  ): Promise<ort.InferenceSession> {
    if (!source) return ort.InferenceSession.create(model.path, options);
    try {
      return await ort.InferenceSession.create(source, options);
    } catch (err) {
      // If this throws too, the failure is not the rewrite's: it goes to the caller as before.
      const session = await ort.InferenceSession.create(model.path, options);
      this.log('warn', `${model.path}: onnxruntime refused the rewritten graph (${(err as Error).message}); loaded the file as it is`);
      return session;
    }
  }

  text(model: PlanModel): Promise<string> {
    let p = this.texts.get(model.key);
    if (!p) {
      p = readFile(model.path, 'utf8');
      this.texts.set(model.key, p);
      p.catch(() => this.texts.delete(model.key));
    }
    return p;
  }

  /** Drops sessions; onnxruntime frees their weights when released. */
  async release(keys: string[]): Promise<void> {
    for (const key of keys) {
      const entry = this.sessions.get(key);
      if (!entry) continue;
      this.sessions.delete(key);
      const made = await entry.pending.catch(() => null);
      await made?.session.release();
    }
  }

  snapshot(): LoadedModelInfo[] {
    return [...this.sessions.entries()]
      .filter(([, e]) => e.made !== undefined)
      .map(([key, e]) => ({
        key,
        path: e.path,
        ...(e.files ? { files: e.files } : {}),
        provider: e.made!.provider,
        load_ms: e.made!.load_ms,
        cost_bytes: e.made!.cost_bytes,
        uses: e.uses,
        last_used: e.last_used,
      }));
  }
}
