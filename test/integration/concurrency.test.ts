// Lanes: runs of different models proceed side by side, runs of the same model queue, and a full
// queue answers DW_ERR_BUSY at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dwJson, OCR_WORKFLOW, SAMPLE, spawnDw, tallImage, withDaemon } from '../helpers/env.js';

test('a short run on other models is not stuck behind a long run; runs of the same model queue', async () => {
  await withDaemon([], async (sb, d) => {
    const tall = await tallImage(sb, 8);
    // The same files with other session options: other sessions, so another lane may take it.
    const wf = JSON.parse(readFileSync(OCR_WORKFLOW, 'utf8'));
    delete wf.$schema;
    wf.variables.image = SAMPLE;
    wf.steps[0].pipeline.options = { graph_optimization: 'basic' };
    const other = join(sb.dir, 'other.json');
    writeFileSync(other, JSON.stringify(wf));
    assert.equal((await dwJson(sb, ['run', OCR_WORKFLOW])).ran.code, 0);
    assert.equal((await dwJson(sb, ['run', other])).ran.code, 0);

    const finished: string[] = [];
    const long = spawnDw(sb, ['run', OCR_WORKFLOW, '--arg', `image=${tall}`, '--json']);
    long.done.then(() => finished.push('long'));
    await long.stderrMatches(/read: \d+\/\d+ boxes/);
    const short = spawnDw(sb, ['run', other, '--json']);
    const same = spawnDw(sb, ['run', OCR_WORKFLOW, '--json']);
    short.done.then(() => finished.push('short'));
    same.done.then(() => finished.push('same'));
    const [rl, rs, rm] = await Promise.all([long.done, short.done, same.done]);
    for (const r of [rl, rs, rm]) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(finished.indexOf('short') < finished.indexOf('long'), true, `finished in order ${finished}`);
    assert.doesNotMatch(rs.stderr, /queued/, 'the short run on other models never waited');
    assert.match(rm.stderr, /queued: position 1/, 'the run on the same models waited for the long one');
    assert.ok(finished.indexOf('same') > finished.indexOf('long'));
  });
});

test('a full queue answers DW_ERR_BUSY at once', async () => {
  await withDaemon(['--parallel', '1', '--max-queue', '1'], async (sb, d) => {
    const tall = await tallImage(sb, 6);
    const running = spawnDw(sb, ['run', OCR_WORKFLOW, '--arg', `image=${tall}`]);
    await running.stderrMatches(/read: \d+\/\d+ boxes/);
    const waiting = spawnDw(sb, ['run', OCR_WORKFLOW]);
    await waiting.stderrMatches(/queued: position 1/);
    const refused = await dwJson(sb, ['run', OCR_WORKFLOW]);
    assert.equal(refused.ran.code, 6);
    assert.equal(refused.json.error.code, 'DW_ERR_BUSY');
    assert.match(refused.json.error.message, /queue is full \(1 runs waiting/);
    assert.equal((await running.done).code, 0);
    assert.equal((await waiting.done).code, 0);
  });
});
