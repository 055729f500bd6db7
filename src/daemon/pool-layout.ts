// How many runners dwd starts and on which device each one runs (--runners, --devices).
import { availableParallelism } from 'node:os';
import { DwError } from '../protocol/errors.js';
import { gpuIndexes } from '../host/nvidia.js';

/** `cpu`, or `cuda:N` for the GPU with that index. */
export type Device = string;

const DEVICE = /^(cpu|cuda:\d+)$/;

/** Largest pool: every runner is a process with its own onnxruntime and models. */
export const MAX_RUNNERS = 32;

export function parseDevices(raw: string, name: string): Device[] {
  const devices = raw
    .split(',')
    .map((d) => d.trim().toLowerCase())
    .filter(Boolean);
  const bad = devices.find((d) => !DEVICE.test(d));
  if (devices.length === 0 || bad !== undefined)
    throw new DwError('DW_ERR_USAGE', `${name}: "${bad ?? raw}" is not a device; give cpu or cuda:N, comma-separated (e.g. cuda:0,cuda:1)`);
  // cuda:00 is cuda:0: one spelling, so that a GPU named twice is seen.
  const canonical = devices.map((d) => (d === 'cpu' ? d : `cuda:${Number(d.slice(5))}`));
  if (new Set(canonical).size !== canonical.length) throw new DwError('DW_ERR_USAGE', `${name}: "${raw}" names a device twice`);
  return canonical;
}

export function parseRunners(raw: string, name: string): number | 'auto' {
  if (raw.toLowerCase() === 'auto') return 'auto';
  const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_RUNNERS)
    throw new DwError('DW_ERR_USAGE', `${name}: "${raw}" is not auto or a whole number from 1 to ${MAX_RUNNERS}`);
  return n;
}

/**
 * The device of each runner. Devices default to every GPU nvidia-smi reports, else the CPU.
 * `auto` runners: one per GPU; on the CPU, two where there are two cores or more: a run then
 * never waits behind another model's long run, and a runner that dies takes only its own runs
 * (CPU priorities keep two busy runners from slowing a short run: cpu-priority.ts). A number is
 * dealt to the devices in turn.
 */
export function poolLayout(
  runners: number | 'auto',
  devices: Device[] | null,
  host = { gpus: () => gpuIndexes(), cores: availableParallelism() },
): Device[] {
  const chosen =
    devices ??
    (() => {
      const gpus = host.gpus();
      return gpus.length > 0 ? gpus.map((i) => `cuda:${i}`) : ['cpu'];
    })();
  const onlyCpu = chosen.length === 1 && chosen[0] === 'cpu';
  const count = runners === 'auto' ? (onlyCpu ? Math.min(2, host.cores) : chosen.length) : runners;
  return Array.from({ length: count }, (_, i) => chosen[i % chosen.length]!);
}
