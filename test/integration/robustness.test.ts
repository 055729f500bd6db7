// Several clients, clients that vanish, and a peer that sends garbage: the daemon answers, closes
// only what it must, and the models stay loaded for everyone else.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { dwJson, fileDaemon, OCR_WORKFLOW, ROOT, spawnDw, tallImage, withDaemon } from '../helpers/env.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { decodeWav } from '../../src/media/audio.js';

const { sb, daemon, started } = fileDaemon();
let tall: string;

before(async () => {
  await started();
  tall = await tallImage(sb, 8);
  const warm = await dwJson(sb, ['run', OCR_WORKFLOW]);
  assert.equal(
    warm.ran.code,
    0,
    `${warm.ran.stderr}\ndaemon (exit ${daemon().proc.exitCode}, signal ${daemon().proc.signalCode}):\n${daemon().log()}`,
  );
});

test('two clients at once both get their own answers; the second sees its queue position', async () => {
  const a = spawnDw(sb, ['run', OCR_WORKFLOW, '--arg', `image=${tall}`, '--json']);
  await a.stderrMatches(/read: started/);
  const b = spawnDw(sb, ['run', OCR_WORKFLOW, '--json']);
  const [ra, rb] = await Promise.all([a.done, b.done]);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(rb.code, 0, rb.stderr);
  assert.match(rb.stderr, /queued: position 1/);
  const ja = JSON.parse(ra.stdout);
  const jb = JSON.parse(rb.stdout);
  assert.ok(ja.results.read.lines.length > jb.results.read.lines.length * 4, 'each client got the result of its own image');
  assert.ok(jb.timings.queue_ms > 0);
});

test('a client killed mid-run cancels its run in the daemon; the next run still hits the cache', async () => {
  const victim = spawnDw(sb, ['run', OCR_WORKFLOW, '--arg', `image=${tall}`]);
  await victim.stderrMatches(/read: \d+\/\d+ boxes/);
  victim.proc.kill('SIGKILL');
  await victim.done;
  const next = await dwJson(sb, ['run', OCR_WORKFLOW]);
  assert.equal(next.ran.code, 0, next.ran.stderr);
  assert.deepEqual(
    next.json.models.map((m: any) => m.cache),
    ['hit', 'hit', 'hit'],
  );
  assert.match(daemon().log(), /"code":"DW_ERR_CANCELLED","err":"the client disconnected"/);
});

test('a client killed while queued is dropped from the queue without running', async () => {
  const before = await runsTotal();
  const first = spawnDw(sb, ['run', OCR_WORKFLOW, '--arg', `image=${tall}`]);
  await first.stderrMatches(/read: started/);
  const queued = spawnDw(sb, ['run', OCR_WORKFLOW]);
  await queued.stderrMatches(/queued: position 1/);
  queued.proc.kill('SIGKILL');
  assert.equal((await first.done).code, 0);
  assert.equal((await runsTotal()) - before, 1, 'only the first run ran; the killed one left the queue');
});

async function runsTotal(): Promise<number> {
  return (await dwJson(sb, ['status'])).json.runs_total;
}

/** Sends `payload`, after a hello answered first when `withHello`; collects every frame until the server closes or `waitMs` pass. */
function exchange(
  payload: string | Buffer,
  opts: { withHello?: boolean; waitMs?: number } = {},
): Promise<{ frames: any[]; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const s = createConnection(sb.socket);
    let got = '';
    let closedByServer = true;
    let sent = false;
    const timer = setTimeout(() => {
      closedByServer = false;
      s.destroy();
    }, opts.waitMs ?? 1000);
    const send = () => {
      if (!sent) s.write(payload);
      sent = true;
    };
    s.on('data', (d) => {
      got += d;
      if (opts.withHello && got.includes('\n')) send();
    });
    s.on('error', reject);
    s.on('connect', () => (opts.withHello ? s.write(hello) : send()));
    s.on('close', () => {
      clearTimeout(timer);
      resolve({
        frames: got
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
        closedByServer,
      });
    });
  });
}

const hello =
  JSON.stringify({
    id: 'h',
    type: 'hello',
    protocol: PROTOCOL_VERSION,
    version: JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version,
  }) + '\n';

test('garbage on the socket: an error frame, that connection closed, the daemon and its models carry on', async () => {
  const garbage = await exchange('{this is not json\n', { withHello: true });
  assert.equal(garbage.frames[0].type, 'result');
  assert.equal(garbage.frames[1].type, 'error');
  assert.equal(garbage.frames[1].error.code, 'DW_ERR_PROTOCOL');
  assert.equal(garbage.closedByServer, true);

  const binary = await exchange(Buffer.from([0xff, 0xfe, 0x00, 0x0a]));
  assert.equal(binary.frames[0].error.code, 'DW_ERR_PROTOCOL');

  const wrongType = await exchange(JSON.stringify({ id: 7, type: 'run', workflow: 42 }) + '\n', { withHello: true, waitMs: 300 });
  assert.equal(wrongType.frames[1].id, 7);
  assert.equal(wrongType.frames[1].error.code, 'DW_ERR_PROTOCOL');
  assert.match(wrongType.frames[1].error.message, /string "workflow"/);
  assert.equal(wrongType.closedByServer, false, 'a well-framed bad request does not cost the connection');

  const noHello = await exchange(JSON.stringify({ id: 1, type: 'status' }) + '\n', { waitMs: 300 });
  assert.match(noHello.frames[0].error.message, /send "hello" first/);
  const stopWithoutHello = await exchange(JSON.stringify({ id: 2, type: 'stop' }) + '\n', { waitMs: 300 });
  assert.match(stopWithoutHello.frames[0].error.message, /send "hello" first/, 'not even stop is taken from a peer that never said hello');

  const next = await dwJson(sb, ['run', OCR_WORKFLOW]);
  assert.equal(next.ran.code, 0);
  assert.deepEqual(
    next.json.models.map((m: any) => m.cache),
    ['hit', 'hit', 'hit'],
  );
});

test('an oversized frame is refused with DW_ERR_PROTOCOL on a daemon with a small frame limit', async () => {
  await withDaemon(['--max-frame', '4K'], async (small) => {
    const reply = await new Promise<string>((resolve) => {
      const s = createConnection(small.socket);
      let got = '';
      s.on('data', (c) => (got += c));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
      s.on('connect', () => s.write('{"id":1,"type":"hello","pad":"' + 'x'.repeat(10_000)));
    });
    const frame = JSON.parse(reply.split('\n')[0]!);
    assert.equal(frame.error.code, 'DW_ERR_PROTOCOL');
    assert.match(frame.error.message, /4096-byte limit/);
  });
});

test('a daemon with a small frame limit still delivers a saved output whole, in pieces that fit', async () => {
  await withDaemon(['--max-frame', '4K'], async (small) => {
    const out = join(small.dir, 'out');
    const { ran, json } = await dwJson(small, ['run', join(ROOT, 'workflows', 'speech-only.json'), '--output-dir', out]);
    assert.equal(ran.code, 0, ran.stderr);
    const saved = readFileSync(join(out, 'speech-only-speech.wav'));
    assert.equal(saved.length, json.outputs[0].bytes);
    assert.ok(saved.length > 4096 * 50, 'the output spans many 4K frames');
    assert.equal(decodeWav(saved, 'speech').sample_rate, 22050);
  });
});
