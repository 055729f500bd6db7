// How many runners on which devices (--runners, --devices), and what a runner on a device gives
// onnxruntime: its GPU providers pinned to its GPU, none at all on a CPU runner of a GPU pool.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDevices, parseRunners, poolLayout } from '../src/daemon/pool-layout.js';
import { candidateProviders, providerEntry, runnerDevice } from '../src/runner/providers.js';
import { DwError } from '../src/protocol/errors.js';

const host = (gpus: number[], cores: number) => ({ gpus: () => gpus, cores });

test('auto: one runner per GPU; on the CPU two where there are two cores or more', () => {
  assert.deepEqual(poolLayout('auto', null, host([0, 1], 16)), ['cuda:0', 'cuda:1']);
  assert.deepEqual(poolLayout('auto', null, host([], 2)), ['cpu', 'cpu']);
  assert.deepEqual(poolLayout('auto', null, host([], 64)), ['cpu', 'cpu']);
  assert.deepEqual(poolLayout('auto', null, host([], 1)), ['cpu']);
  assert.deepEqual(poolLayout('auto', ['cpu', 'cuda:1'], host([0, 1], 8)), ['cpu', 'cuda:1']);
});

test('a number of runners is dealt to the devices in turn', () => {
  assert.deepEqual(poolLayout(3, null, host([0, 1], 8)), ['cuda:0', 'cuda:1', 'cuda:0']);
  assert.deepEqual(poolLayout(1, null, host([], 8)), ['cpu']);
  assert.deepEqual(poolLayout(4, ['cpu'], host([0], 8)), ['cpu', 'cpu', 'cpu', 'cpu']);
});

test('bad --runners and --devices values are usage errors that say what is allowed', () => {
  for (const bad of ['0', '-1', '1.5', 'two', '33', '', '0x2', '2e0', ' 3'])
    assert.throws(
      () => parseRunners(bad, '--runners'),
      (e: DwError) => e.code === 'DW_ERR_USAGE' && /auto or a whole number from 1 to 32/.test(e.message),
      bad,
    );
  assert.equal(parseRunners('auto', '--runners'), 'auto');
  assert.equal(parseRunners('AUTO', '--runners'), 'auto');
  assert.equal(parseRunners('3', '--runners'), 3);
  assert.deepEqual(parseDevices(' CUDA:0, cpu ', '--devices'), ['cuda:0', 'cpu']);
  for (const bad of ['gpu', 'cuda', 'cuda:x', 'cuda:0,,rocm:1', ','])
    assert.throws(
      () => parseDevices(bad, '--devices'),
      (e: DwError) => e.code === 'DW_ERR_USAGE' && /give cpu or cuda:N/.test(e.message),
      bad,
    );
  for (const twice of ['cuda:0,cuda:0', 'cuda:00,cuda:0', 'cpu,cpu'])
    assert.throws(
      () => parseDevices(twice, '--devices'),
      (e: DwError) => /names a device twice/.test(e.message),
      twice,
    );
  assert.deepEqual(parseDevices('cuda:01', '--devices'), ['cuda:1']);
});

test('a runner pinned to a GPU gives onnxruntime its device id; a CPU runner of a GPU pool skips GPU providers', () => {
  const gpu = runnerDevice({ DW_RUNNER_DEVICE: 'cuda:3' });
  assert.deepEqual(gpu, { kind: 'gpu', id: 3 });
  assert.deepEqual(providerEntry('cuda', gpu), { name: 'cuda', deviceId: 3 });
  assert.equal(providerEntry('cpu', gpu), 'cpu');
  const cpu = runnerDevice({ DW_RUNNER_DEVICE: 'cpu' });
  const onCpu = candidateProviders(['cuda', 'cpu'], cpu);
  assert.deepEqual(onCpu.offDevice, ['cuda']);
  assert.deepEqual(onCpu.tryOrder, ['cpu']);
  assert.equal(providerEntry('cuda', cpu), 'cuda');
  // Unpinned (a pool without GPU runners): every provider is tried, as listed.
  assert.equal(runnerDevice({}), null);
  assert.deepEqual(candidateProviders(['cuda', 'cpu'], null).offDevice, []);
});
