// Host and GPU facts for dw memory. GPU memory comes from nvidia-smi where it answers (through
// systeminformation for the device, directly for per-process use); without it: no GPU.
import si from 'systeminformation';
import type { GpuInfo } from '../protocol/messages.js';
import { gpuProcesses } from '../host/nvidia.js';

/**
 * How long one reading of the graphics facts serves. systeminformation runs lspci, clinfo, xrandr
 * and more for them: read on every `dw memory`, a client asking in a loop kept the daemon forking.
 */
const GRAPHICS_TTL_MS = 10_000;
let graphics: { at: number; facts: ReturnType<typeof si.graphics> } | null = null;

function graphicsFacts(): ReturnType<typeof si.graphics> {
  if (!graphics || Date.now() - graphics.at > GRAPHICS_TTL_MS) graphics = { at: Date.now(), facts: si.graphics() };
  return graphics.facts;
}

export async function gpuFacts(pids: number[]): Promise<{ gpus: GpuInfo[]; note: string | null }> {
  const { controllers } = await graphicsFacts();
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

// The CPU does not change while the daemon runs: read it once, not on every dw memory.
let cpuFacts: ReturnType<typeof si.cpu> | null = null;

/**
 * One reading of memory serves every request of the same half second: each reading opens
 * /proc/meminfo, and thousands of `dw memory` at once once held as many files open, past the
 * process's limit, so that no other client could connect.
 */
const MEM_TTL_MS = 500;
let memFacts: { at: number; facts: ReturnType<typeof si.mem> } | null = null;

export async function hostFacts(): Promise<{ total_mem: number; available_mem: number; cpus: number; cpu: string }> {
  if (!memFacts || Date.now() - memFacts.at > MEM_TTL_MS) memFacts = { at: Date.now(), facts: si.mem() };
  const [mem, cpu] = await Promise.all([memFacts.facts, (cpuFacts ??= si.cpu())]);
  return { total_mem: mem.total, available_mem: mem.available, cpus: cpu.cores, cpu: `${cpu.manufacturer} ${cpu.brand}`.trim() };
}
