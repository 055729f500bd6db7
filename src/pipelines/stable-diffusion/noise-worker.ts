// The worker behind noise-ahead.ts: one seeded generator per generation, drawing chunks of n
// standard normals in order, as many as asked, each sent back without a copy.
import { parentPort } from 'node:worker_threads';
import { Noise } from './noise.js';

export type ToNoiseWorker =
  | { type: 'start'; id: number; seed: number; n: number }
  | { type: 'draw'; id: number; count: number }
  | { type: 'end'; id: number };
export interface FromNoiseWorker {
  id: number;
  chunk: Float32Array;
}

const generations = new Map<number, { noise: Noise; n: number }>();

parentPort?.on('message', (m: ToNoiseWorker) => {
  if (m.type === 'start') generations.set(m.id, { noise: new Noise(m.seed), n: m.n });
  else if (m.type === 'end') generations.delete(m.id);
  else {
    const g = generations.get(m.id);
    for (let i = 0; g && i < m.count; i++) {
      const chunk = g.noise.randn(g.n);
      parentPort!.postMessage({ id: m.id, chunk } satisfies FromNoiseWorker, [chunk.buffer as ArrayBuffer]);
    }
  }
});
