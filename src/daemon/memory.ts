// Host and GPU facts for dw memory. GPU memory comes from nvidia-smi where it answers (through
// systeminformation for the device, directly for per-process use); without it: no GPU.
import { execFile } from 'node:child_process';
import si from 'systeminformation';
import type { GpuInfo } from '../protocol/messages.js';

function nvidiaSmi(args: string[]): Promise<string | null> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', args, { timeout: 3000 }, (err, stdout) => resolve(err ? null : stdout));
  });
}

/** Per-process GPU memory in bytes, by pid. */
async function gpuProcesses(): Promise<Map<number, number>> {
  const out = await nvidiaSmi(['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits']);
  const byPid = new Map<number, number>();
  for (const line of out?.trim().split('\n') ?? []) {
    const [pid, mib] = line.split(',').map((x) => Number(x.trim()));
    if (Number.isFinite(pid) && Number.isFinite(mib)) byPid.set(pid!, mib! * 1024 * 1024);
  }
  return byPid;
}

export async function gpuFacts(pids: number[]): Promise<{ gpus: GpuInfo[]; note: string | null }> {
  const { controllers } = await si.graphics();
  const nvidia = controllers.filter((c) => /nvidia/i.test(c.vendor ?? '') && c.memoryTotal !== undefined);
  if (nvidia.length === 0) return { gpus: [], note: 'no GPU (nvidia-smi does not answer)' };
  const procs = await gpuProcesses();
  const mib = (x: number | undefined | null) => (x === undefined || x === null ? null : x * 1024 * 1024);
  return {
    gpus: nvidia.map((c) => ({
      name: c.model,
      memory_total: mib(c.memoryTotal),
      memory_used: mib(c.memoryUsed),
      memory_free: mib(c.memoryFree),
      processes: pids.filter((p) => procs.has(p)).map((pid) => ({ pid, used_memory: procs.get(pid)! })),
    })),
    note: null,
  };
}

export async function hostFacts(): Promise<{ total_mem: number; available_mem: number; cpus: number; cpu: string }> {
  const [mem, cpu] = await Promise.all([si.mem(), si.cpu()]);
  return { total_mem: mem.total, available_mem: mem.available, cpus: cpu.cores, cpu: `${cpu.manufacturer} ${cpu.brand}`.trim() };
}
