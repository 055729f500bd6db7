import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileHasher } from '../src/daemon/hashing.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

test('hashes a file once while path, size, mtime and inode stay the same', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dwh-'));
  const f = join(dir, 'model.onnx');
  writeFileSync(f, 'weights-v1');
  const h = new FileHasher();
  assert.equal(await h.sha256(f), sha('weights-v1'));
  assert.equal(await h.sha256(f), sha('weights-v1'));
  assert.equal(h.hashed, 1);
});

test('hashes again after an in-place rewrite (mtime) and after a rename over the file (inode)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dwh-'));
  const f = join(dir, 'model.onnx');
  writeFileSync(f, 'weights-v1');
  const h = new FileHasher();
  await h.sha256(f);
  // Same size, new content: only mtime tells them apart.
  writeFileSync(f, 'weights-v2');
  utimesSync(f, new Date(), new Date(Date.now() + 5000));
  assert.equal(await h.sha256(f), sha('weights-v2'));
  const tmp = join(dir, 'new.onnx');
  writeFileSync(tmp, 'weights-v3');
  renameSync(tmp, f);
  assert.equal(await h.sha256(f), sha('weights-v3'));
  assert.equal(h.hashed, 3);
});

test('a missing file rejects and is not memoised', async () => {
  const h = new FileHasher();
  await assert.rejects(h.sha256('/nonexistent/dw/model.onnx'), /ENOENT/);
});
