// Shortest job first between runners (daemon/cpu-priority.ts): which runner is lowered, when it is
// raised back, and that nothing is changed where dwd could not raise a runner back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CpuPriorities, LONG_RUN_MS, LOWERED_NICE, runnersToLower } from '../src/daemon/cpu-priority.js';

test('a runner is lowered only while a run that started well after its own is busy on another runner', () => {
  const now = 10_000;
  assert.deepEqual([...runnersToLower([{ pid: 1, since: 0 }], now)], [], 'alone: nothing to favour');
  assert.deepEqual([...runnersToLower([], now)], []);
  assert.deepEqual(
    [
      ...runnersToLower(
        [
          { pid: 1, since: 0 },
          { pid: 2, since: null },
        ],
        now,
      ),
    ],
    [],
    'the other runner is idle',
  );
  const started = (a: number, b: number) => [
    { pid: 1, since: a },
    { pid: 2, since: b },
  ];
  assert.deepEqual([...runnersToLower(started(now - LONG_RUN_MS + 1, now), now)], [], 'started about together: they share');
  assert.deepEqual([...runnersToLower(started(now - LONG_RUN_MS, now), now)], [1]);
  assert.deepEqual([...runnersToLower(started(now, now - 5000), now)], [2], 'whichever is older');
  const three = [
    { pid: 1, since: 100 },
    { pid: 2, since: 5000 },
    { pid: 3, since: 200 },
    { pid: null, since: null },
  ];
  assert.deepEqual([...runnersToLower(three, now)].sort(), [1, 3], 'all but the youngest');
});

test('a lowered runner gets its priority back when the younger run ends; off, nothing is reniced', () => {
  const calls: string[] = [];
  let busy: Array<{ pid: number; since: number | null }> = [
    { pid: 7, since: 0 },
    { pid: 8, since: 1000 },
  ];
  const p = new CpuPriorities({
    busy: () => busy,
    enabled: true,
    renice: (pid, nice) => {
      calls.push(`${pid}:${nice}`);
      return true;
    },
  });
  p.update(1001);
  assert.deepEqual(calls, [`7:${LOWERED_NICE}`]);
  assert.equal(p.stateOf(7), 'lowered');
  assert.equal(p.stateOf(8), 'normal');
  p.update(1050);
  assert.deepEqual(calls, [`7:${LOWERED_NICE}`], 'not reniced again');
  busy = [
    { pid: 7, since: 0 },
    { pid: 8, since: null },
  ];
  p.update(5000);
  assert.deepEqual(calls, [`7:${LOWERED_NICE}`, '7:0']);
  assert.equal(p.stateOf(7), 'normal');
  p.stop();

  const off = new CpuPriorities({ busy: () => busy, enabled: false, renice: () => assert.fail('reniced while off') });
  off.update(99_999);
  assert.equal(off.stateOf(7), 'off');
});

test('a runner that may not be raised back turns priorities off, said once, rather than leave runners lowered', () => {
  const me = process.pid; // a live process: the refusal is real, not a runner that has gone
  let busy: Array<{ pid: number; since: number | null }> = [
    { pid: me, since: 0 },
    { pid: 8, since: 1000 },
  ];
  const said: Array<number | null> = [];
  const p = new CpuPriorities({
    busy: () => busy,
    enabled: true,
    renice: (_pid, nice) => nice > 0,
    noted: (_pid, nice) => said.push(nice),
  });
  p.update(1000);
  assert.equal(p.stateOf(me), 'lowered');
  busy = [
    { pid: me, since: 0 },
    { pid: 8, since: null },
  ];
  p.update(2000);
  assert.deepEqual(said, [LOWERED_NICE, null]);
  assert.equal(p.enabled, false);
  assert.equal(p.stateOf(me), 'off');
  p.update(3000);
  assert.deepEqual(said, [LOWERED_NICE, null], 'nothing more');
});
