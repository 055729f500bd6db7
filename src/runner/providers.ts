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

/** The providers to attempt, in the workflow's order; cpu is always the last resort. */
export function candidateProviders(requested: string[]): { tryOrder: string[]; skipped: string[] } {
  const order = requested.includes('cpu') ? requested : [...requested, 'cpu'];
  return { tryOrder: order.filter(providerInstalled), skipped: order.filter((p) => !providerInstalled(p)) };
}
