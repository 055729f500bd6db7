// nvidia-smi, synchronously, for the runner (a load's GPU cost) and dwd's start (--max-memory N%gpu);
// dw memory asks it asynchronously (memory.ts) so the daemon never blocks on it.
// No shell, a short timeout, and null when there is no NVIDIA driver (the usual case on CPU hosts).
import { execFileSync } from 'node:child_process';

function query(args: string[]): string | null {
  try {
    return execFileSync('nvidia-smi', args, { encoding: 'utf8', timeout: 3000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
}

/** GPU memory used by one process, in bytes, summed over GPUs; null without nvidia-smi. */
export function gpuMemoryOfPid(pid: number): number | null {
  const out = query(['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits']);
  if (out === null) return null;
  let total = 0;
  for (const line of out.trim().split('\n')) {
    const [p, mib] = line.split(',').map((x) => Number(x.trim()));
    if (p === pid && Number.isFinite(mib)) total += mib! * 1024 * 1024;
  }
  return total;
}

/** Total memory of all GPUs, in bytes; null without nvidia-smi. */
export function gpuMemoryTotal(): number | null {
  const out = query(['--query-gpu=memory.total', '--format=csv,noheader,nounits']);
  if (out === null) return null;
  const mib = out.trim().split('\n').map((x) => Number(x.trim())).filter(Number.isFinite);
  return mib.length > 0 ? mib.reduce((a, b) => a + b, 0) * 1024 * 1024 : null;
}
