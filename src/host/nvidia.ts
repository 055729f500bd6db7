// nvidia-smi, where it answers: per-process GPU memory (for dw memory, asynchronously, so the
// daemon never blocks on it; and for a load's GPU cost in the runner, synchronously, since the
// runner is busy loading anyway) and each GPU's memory (for --max-memory N%gpu at dwd's start).
// No shell, a short timeout, and null when there is no NVIDIA driver (the usual case on CPU hosts).
import { execFile, execFileSync } from 'node:child_process';

const COMPUTE_APPS = ['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits'];
const OPTIONS = { encoding: 'utf8' as const, timeout: 3000 };

function query(args: string[]): string | null {
  try {
    return execFileSync('nvidia-smi', args, { ...OPTIONS, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
}

function queryAsync(args: string[]): Promise<string | null> {
  return new Promise((resolve) => execFile('nvidia-smi', args, OPTIONS, (err, stdout) => resolve(err ? null : stdout)));
}

/** GPU memory in bytes by pid, summed over GPUs, from --query-compute-apps output. */
function byPid(out: string): Map<number, number> {
  const used = new Map<number, number>();
  for (const line of out.trim().split('\n')) {
    const [pid, mib] = line.split(',').map((x) => Number(x.trim()));
    if (Number.isFinite(pid) && Number.isFinite(mib)) used.set(pid!, (used.get(pid!) ?? 0) + mib! * 1024 * 1024);
  }
  return used;
}

/** GPU memory used by each process, in bytes; empty without nvidia-smi. */
export async function gpuProcesses(): Promise<Map<number, number>> {
  const out = await queryAsync(COMPUTE_APPS);
  return out === null ? new Map() : byPid(out);
}

/** GPU memory used by one process, in bytes; null without nvidia-smi. */
export function gpuMemoryOfPid(pid: number): number | null {
  const out = query(COMPUTE_APPS);
  return out === null ? null : (byPid(out).get(pid) ?? 0);
}

/** Each GPU's memory in bytes, by index; empty without nvidia-smi. */
export function gpuMemoryByIndex(): Map<number, number> {
  const out = query(['--query-gpu=index,memory.total', '--format=csv,noheader,nounits']);
  const totals = new Map<number, number>();
  for (const line of out?.trim().split('\n') ?? []) {
    const [index, mib] = line.split(',').map((x) => Number(x.trim()));
    if (Number.isInteger(index) && Number.isFinite(mib)) totals.set(index!, mib! * 1024 * 1024);
  }
  return totals;
}

/** The index of every GPU nvidia-smi reports; empty without nvidia-smi. */
export function gpuIndexes(): number[] {
  const out = query(['--query-gpu=index', '--format=csv,noheader,nounits']);
  if (out === null) return [];
  return out
    .trim()
    .split('\n')
    .map((x) => Number(x.trim()))
    .filter(Number.isInteger);
}
