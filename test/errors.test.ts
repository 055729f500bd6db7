// Codes, their exit codes and the README's table must say the same thing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ERROR_CODES, EXIT } from '../src/protocol/errors.js';

const ROOT = resolve(import.meta.dirname, '..');

test('the README documents every error code with its exit code and meaning, and nothing else', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const rows = [...readme.matchAll(/^\| `(DW_ERR_\w+)` \| (\d+) \| (.+) \|$/gm)].map((m) => [m[1], Number(m[2]), m[3]]);
  const expected = Object.entries(ERROR_CODES).map(([code, { exit, doc }]) => [code, exit, doc]);
  assert.deepEqual(rows, expected);
});

test('exit codes are distinct per kind of failure', () => {
  const kinds = Object.values(EXIT);
  assert.equal(new Set(kinds).size, kinds.length);
  for (const { exit } of Object.values(ERROR_CODES)) assert.ok(kinds.includes(exit as (typeof kinds)[number]));
});

test('dw --help lists every code under its exit code', () => {
  const help = execFileSync(process.execPath, [join(ROOT, 'dist', 'cli', 'dw.cjs'), '--help'], { encoding: 'utf8' });
  for (const [code, { exit }] of Object.entries(ERROR_CODES)) {
    assert.match(help, new RegExp(`^ +${exit}  .*\\b${code}\\b`, 'm'), code);
  }
});
