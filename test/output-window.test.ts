// The runner's side of output flow control (src/runner/output-window.ts): no more than the window
// goes out ahead of acks, each ack lets one more through, and a cancelled run stops waiting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OUTPUT_WINDOW, OutputWindow } from '../src/runner/output-window.js';
import type { RunEvent } from '../src/protocol/messages.js';

const piece = (i: number): RunEvent => ({ kind: 'output', index: 0, data_base64: String(i).padStart(4, '0') });
const settle = () => new Promise((r) => setImmediate(r));

test('pieces go out a window ahead of the acks, in order', async () => {
  const sent: RunEvent[] = [];
  const w = new OutputWindow(new AbortController().signal, (e) => sent.push(e));
  const all = Promise.all(Array.from({ length: OUTPUT_WINDOW + 3 }, (_, i) => w.send(piece(i))));
  await settle();
  assert.equal(sent.length, OUTPUT_WINDOW, 'the window, then a wait');
  w.acked();
  await settle();
  assert.equal(sent.length, OUTPUT_WINDOW + 1, 'one ack, one more piece');
  w.acked();
  w.acked();
  await all;
  assert.deepEqual(
    sent,
    Array.from({ length: OUTPUT_WINDOW + 3 }, (_, i) => piece(i)),
  );
});

test('a run cancelled while it waits for an ack stops with the cancel reason', async () => {
  const controller = new AbortController();
  const w = new OutputWindow(controller.signal, () => {});
  for (let i = 0; i < OUTPUT_WINDOW; i++) await w.send(piece(i));
  const waiting = w.send(piece(OUTPUT_WINDOW));
  const reason = new Error('cancelled by the client');
  controller.abort(reason);
  await assert.rejects(waiting, (e) => e === reason);
  await assert.rejects(w.send(piece(0)), (e) => e === reason, 'and sends nothing more');
});
