// dw's side of saved outputs (src/cli/output.ts): pieces appended in order to hidden temporary
// files, renamed into place only when the result's byte counts match, and nothing left otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { OutputFiles } from '../src/cli/output.js';
import { DwError } from '../src/protocol/errors.js';
import { makeDirs } from '../src/protocol/dirs.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const out = (name: string, bytes: number) => ({ step: name, name, content_type: 'text/plain', bytes });

function inDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'dwo-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('pieces of several outputs, interleaved, land in their files in order; an empty output is an empty file', () => {
  inDir((dir) => {
    const files = new OutputFiles(join(dir, 'out'));
    files.piece(0, b64('hello '));
    files.piece(1, b64('12'));
    files.piece(0, b64('world'));
    files.piece(1, b64('34'));
    const written = files.finish([out('a.txt', 11), out('b.txt', 4), out('empty.txt', 0)]);
    assert.deepEqual(
      written.map((w) => w.bytes),
      [11, 4, 0],
    );
    assert.equal(readFileSync(join(dir, 'out', 'a.txt'), 'utf8'), 'hello world');
    assert.equal(readFileSync(join(dir, 'out', 'b.txt'), 'utf8'), '1234');
    assert.deepEqual(readdirSync(join(dir, 'out')).sort(), ['a.txt', 'b.txt', 'empty.txt']);
  });
});

test('a byte count that does not match, a name with a folder, or a bogus piece: an error and no file at all', () => {
  const cases: Array<[string, (f: OutputFiles) => void, ReturnType<typeof out>[], string]> = [
    ['short', (f) => f.piece(0, b64('abc')), [out('a.txt', 4)], 'DW_ERR_PROTOCOL'],
    ['folder', (f) => f.piece(0, b64('abc')), [out('../a.txt', 3)], 'DW_ERR_OUTPUT'],
    ['bogus index', (f) => f.piece(-1 as number, b64('abc')), [out('a.txt', 3)], 'DW_ERR_PROTOCOL'],
    ['not base64', (f) => f.piece(0, '!!!!' + b64('abc')), [out('a.txt', 3)], 'DW_ERR_PROTOCOL'],
    ['same name twice', (f) => (f.piece(0, b64('a')), f.piece(1, b64('b'))), [out('a.txt', 1), out('a.txt', 1)], 'DW_ERR_OUTPUT'],
  ];
  for (const [why, feed, outputs, code] of cases) {
    inDir((dir) => {
      const files = new OutputFiles(dir);
      feed(files);
      assert.throws(
        () => files.finish(outputs),
        (e: unknown) => e instanceof DwError && e.code === code,
        why,
      );
      assert.deepEqual(readdirSync(dir), [], why);
    });
  }
});

test('discard after pieces (a failed or cancelled run) removes the temporary files', () => {
  inDir((dir) => {
    const files = new OutputFiles(dir);
    files.piece(0, b64('partial'));
    assert.equal(readdirSync(dir).length, 1, 'the piece went to a temporary file');
    assert.match(readdirSync(dir)[0]!, /^\.dw-output-\d+-[0-9a-f]{12}-0\.tmp$/, 'hidden, and not guessable by another user');
    files.discard();
    assert.deepEqual(readdirSync(dir), []);
  });
});

test('an output folder that cannot be written fails the run with DW_ERR_OUTPUT at the end', () => {
  inDir((dir) => {
    writeFileSync(join(dir, 'a-file'), '');
    const files = new OutputFiles(join(dir, 'a-file', 'out'));
    files.piece(0, b64('x'));
    assert.throws(
      () => files.finish([out('a.txt', 1)]),
      (e: unknown) => e instanceof DwError && e.code === 'DW_ERR_OUTPUT',
    );
    assert.deepEqual(readdirSync(dir), ['a-file']);
  });
});

test('an output folder where mkdir keeps failing with ENOENT (under /proc) is an error, not a hang', () => {
  // Node 20's recursive mkdir loops forever on this path; dw's makeDirs gives up on the second failure.
  assert.throws(
    () => makeDirs('/proc/no-such/dir'),
    (e: NodeJS.ErrnoException) => e.code === 'ENOENT',
  );
  const files = new OutputFiles('/proc/no-such/dir');
  files.piece(0, b64('x'));
  assert.throws(
    () => files.finish([out('a.txt', 1)]),
    (e: unknown) => e instanceof DwError && e.code === 'DW_ERR_OUTPUT',
  );
});

test('makeDirs makes missing parents, accepts a folder that exists, and refuses a file in the way', () => {
  inDir((dir) => {
    makeDirs(join(dir, 'a', 'b', 'c'), 0o700);
    makeDirs(join(dir, 'a', 'b', 'c'));
    assert.deepEqual(readdirSync(join(dir, 'a', 'b')), ['c']);
    writeFileSync(join(dir, 'f'), '');
    assert.throws(
      () => makeDirs(join(dir, 'f')),
      (e: NodeJS.ErrnoException) => e.code === 'ENOTDIR' && /f exists and is not a folder$/.test(e.message),
    );
    assert.throws(
      () => makeDirs(join(dir, 'f', 'g')),
      (e: NodeJS.ErrnoException) => e.code === 'ENOTDIR',
    );
  });
});

test('a run whose second output is short replaces none of the files already there', () => {
  inDir((dir) => {
    writeFileSync(join(dir, 'a.txt'), 'yours');
    const files = new OutputFiles(dir);
    files.piece(0, b64('new a'));
    files.piece(1, b64('abc'));
    assert.throws(
      () => files.finish([out('a.txt', 5), out('b.txt', 4)]),
      (e: unknown) => e instanceof DwError && e.code === 'DW_ERR_PROTOCOL',
    );
    assert.deepEqual(readdirSync(dir), ['a.txt']);
    assert.equal(readFileSync(join(dir, 'a.txt'), 'utf8'), 'yours');
  });
});

test('a rename that fails part way puts back the files the earlier ones replaced, and leaves nothing over', () => {
  inDir((dir) => {
    writeFileSync(join(dir, 'a.txt'), 'yours');
    mkdirSync(join(dir, 'b.txt', 'in-the-way'), { recursive: true });
    const files = new OutputFiles(dir);
    files.piece(0, b64('new a'));
    files.piece(1, b64('new b'));
    files.piece(2, b64('new c'));
    assert.throws(
      () => files.finish([out('a.txt', 5), out('c.txt', 5), out('b.txt', 5)]),
      (e: unknown) => e instanceof DwError && e.code === 'DW_ERR_OUTPUT' && /b\.txt: .*none of your files was replaced/.test(e.message),
    );
    assert.deepEqual(readdirSync(dir).sort(), ['a.txt', 'b.txt']);
    assert.equal(readFileSync(join(dir, 'a.txt'), 'utf8'), 'yours');
    assert.deepEqual(readdirSync(join(dir, 'b.txt')), ['in-the-way']);
  });
});

test('a disk that fills up mid-piece fails the output instead of saving it short', () => {
  // RLIMIT_FSIZE stands in for a full disk: write(2) writes what fits and returns a short count.
  inDir((dir) => {
    const script = `
      import { OutputFiles } from ${JSON.stringify(join(import.meta.dirname, '..', 'src', 'cli', 'output.ts'))};
      const files = new OutputFiles(${JSON.stringify(dir)});
      const piece = Buffer.alloc(6000, 1).toString('base64');
      files.piece(0, piece);
      files.piece(0, piece);
      try { files.finish([{ step: 's', name: 'out.bin', content_type: 'application/octet-stream', bytes: 12000 }]); console.log('saved'); }
      catch (e) { console.log(e.code); }`;
    const r = spawnSync('bash', ['-c', `ulimit -f 8; exec "${process.execPath}" --import tsx --input-type=module -e "$0"`, script], {
      encoding: 'utf8',
      cwd: join(import.meta.dirname, '..'),
    });
    assert.equal(r.stdout.trim(), 'DW_ERR_OUTPUT', r.stderr);
    assert.deepEqual(readdirSync(dir), []);
  });
});

test('temporary outputs left by a dw that was killed (its pid is gone) are removed by the next dw writing there', () => {
  inDir((dir) => {
    // A pid that is not running: a child that has exited.
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    const stale = join(dir, `.dw-output-${dead}-0123456789ab-0.tmp`);
    const live = join(dir, `.dw-output-${process.ppid}-0123456789ab-0.tmp`);
    const unrelated = join(dir, `.dw-output-${dead}-notmine.tmp`);
    for (const f of [stale, live, unrelated]) writeFileSync(f, 'x'.repeat(1000));
    const files = new OutputFiles(dir);
    files.piece(0, b64('new'));
    files.finish([out('a.txt', 3)]);
    assert.deepEqual(
      readdirSync(dir).sort(),
      [live, unrelated]
        .map((f) => f.slice(dir.length + 1))
        .concat('a.txt')
        .sort(),
    );
  });
});
