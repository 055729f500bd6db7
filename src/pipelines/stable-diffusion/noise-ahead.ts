// Fresh noise for the steps that add some (euler_a, lcm), drawn ahead in a worker thread while the
// UNet runs: NumPy's generator costs about 2 ms per 65k numbers here (a 1024x1024 image), which on
// the JavaScript thread was most of a step's own time. The chunks come in the order one generator
// draws them, so the numbers are exactly those of drawing them in place (test/sd-noise.test.ts).
import { Worker } from 'node:worker_threads';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Noise } from './noise.js';
import type { FromNoiseWorker, ToNoiseWorker } from './noise-worker.js';

/** Chunks of n standard normals, in order: the initial latents (or an encoder's sample), then each step's. */
export interface NoiseSource {
  take(): Promise<Float32Array>;
  close(): void;
}

/** Drawn where asked, on this thread: for generations that draw only once or twice. */
export function noiseHere(seed: number, n: number): NoiseSource {
  const noise = new Noise(seed);
  return { take: async () => noise.randn(n), close: () => {} };
}

/** Chunks kept drawn ahead of the steps that take them. */
const AHEAD = 2;

// One worker for the runner's life (starting one costs tens of milliseconds), idle between generations.
let worker: Worker | null = null;
let seq = 0;
/** Takes waiting for a chunk: the worker keeps the process alive only while there are some. */
let pending = 0;
const waited = (delta: number) => {
  pending += delta;
  if (pending > 0) worker?.ref();
  else worker?.unref();
};
const takers = new Map<number, { chunk: (c: Float32Array) => void; fail: (e: Error) => void }>();

/** The built worker; run from source (tsx, which does not load TypeScript in worker threads), none. */
const WORKER = extname(fileURLToPath(import.meta.url)) === '.js' ? fileURLToPath(new URL('./noise-worker.js', import.meta.url)) : null;

/** Whether noiseAhead draws in a worker (built code) or here (run from source). */
export const drawsInWorker = () => WORKER !== null;

function noiseWorker(): Worker {
  if (!WORKER) throw new Error('no built noise worker');
  if (!worker) {
    const w = new Worker(WORKER);
    w.on('message', (m: FromNoiseWorker) => takers.get(m.id)?.chunk(m.chunk));
    // A worker that died leaves no generation waiting for ever: they fail, the next one starts another.
    const gone = (err: Error) => {
      if (worker === w) worker = null;
      for (const t of takers.values()) t.fail(err);
    };
    w.on('error', gone);
    w.on('exit', (code) => gone(new Error(`the noise worker exited (code ${code})`)));
    w.unref();
    worker = w;
  }
  return worker;
}

/** Drawn ahead in the worker; on this thread if the worker cannot start (or run from source). */
export function noiseAhead(seed: number, n: number): NoiseSource {
  let w: Worker;
  try {
    w = noiseWorker();
  } catch {
    return noiseHere(seed, n);
  }
  const id = ++seq;
  const ready: Float32Array[] = [];
  const waiting: Array<{ resolve: (c: Float32Array) => void; reject: (e: Error) => void }> = [];
  let failed: Error | null = null;
  takers.set(id, {
    chunk: (c) => {
      const w = waiting.shift();
      if (!w) return void ready.push(c);
      waited(-1);
      w.resolve(c);
    },
    fail: (err) => {
      failed = err;
      for (const w of waiting.splice(0)) {
        waited(-1);
        w.reject(err);
      }
    },
  });
  const send = (m: ToNoiseWorker) => w.postMessage(m);
  send({ type: 'start', id, seed, n });
  send({ type: 'draw', id, count: AHEAD });
  return {
    take() {
      const chunk = ready.shift();
      if (chunk) {
        send({ type: 'draw', id, count: 1 });
        return Promise.resolve(chunk);
      }
      if (failed) return Promise.reject(failed);
      send({ type: 'draw', id, count: 1 });
      waited(1);
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    close() {
      takers.delete(id);
      send({ type: 'end', id });
    },
  };
}
