// onnxruntime-node throws when a listed execution provider is missing instead of falling back, and
// prints an error line of its own first. So providers whose library is not installed are skipped
// before onnxruntime sees them, and a load that still fails falls through to the next provider.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** Folder of onnxruntime_binding.node, where the optional provider libraries are installed. */
function bindingDir(): string {
  const pkg = dirname(require.resolve('onnxruntime-node/package.json'));
  return join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
}

const PROVIDER_LIBS: Record<string, string> = {
  cuda: 'libonnxruntime_providers_cuda.so',
  tensorrt: 'libonnxruntime_providers_tensorrt.so',
};

const availability = new Map<string, boolean>();

export function providerInstalled(name: string): boolean {
  let ok = availability.get(name);
  if (ok === undefined) {
    const lib = PROVIDER_LIBS[name];
    ok = lib === undefined || existsSync(join(bindingDir(), lib));
    availability.set(name, ok);
  }
  return ok;
}

/**
 * The device dwd gave this runner (daemon/pool-layout.ts): `cpu`, or `cuda:N`, whose GPU providers
 * are pinned to device N. A CPU runner skips GPU providers: its pool has GPU runners for them.
 */
export function runnerDevice(env: NodeJS.ProcessEnv = process.env): { kind: 'cpu' } | { kind: 'gpu'; id: number } | null {
  const raw = env.DW_RUNNER_DEVICE;
  if (raw === undefined || raw === '') return null;
  const gpu = /^cuda:(\d+)$/.exec(raw);
  return gpu ? { kind: 'gpu', id: Number(gpu[1]) } : { kind: 'cpu' };
}

/** The providers to attempt, in the workflow's order; cpu is always the last resort. */
export function candidateProviders(
  requested: string[],
  device = runnerDevice(),
): { tryOrder: string[]; skipped: string[]; offDevice: string[] } {
  const order = requested.includes('cpu') ? requested : [...requested, 'cpu'];
  const offDevice = device?.kind === 'cpu' ? order.filter((p) => p in PROVIDER_LIBS) : [];
  const usable = order.filter((p) => !offDevice.includes(p));
  return { tryOrder: usable.filter(providerInstalled), skipped: usable.filter((p) => !providerInstalled(p)), offDevice };
}

/** What onnxruntime is given for a provider: a GPU provider on a GPU runner is pinned to its device. */
export function providerEntry(name: string, device = runnerDevice()): string | { name: string; deviceId: number } {
  return device?.kind === 'gpu' && name in PROVIDER_LIBS ? { name, deviceId: device.id } : name;
}
