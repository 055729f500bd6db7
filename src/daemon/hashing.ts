// sha256 of model files, memoised by path + size + mtime + ctime + inode, so a 5 GB model is hashed
// once and not on every run, while a replaced or rewritten file is hashed again. The ctime matters:
// a file rewritten in place with its size and mtime put back (`touch -d`, `cp -p`) keeps those, but
// any write moves its ctime, which no user can set back.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

interface Memo {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  sha256: Promise<string>;
}

export class FileHasher {
  private readonly memo = new Map<string, Memo>();
  hashed = 0;

  /**
   * `onHash` is told when a file really has to be read (not memoised), with its size: big ones take
   * a while; `onBytes` then follows the reading.
   */
  async sha256(path: string, onHash?: (size: number) => void, onBytes?: (done: number, size: number) => void): Promise<string> {
    const st = await stat(path);
    const m = this.memo.get(path);
    if (m && m.size === st.size && m.mtimeMs === st.mtimeMs && m.ctimeMs === st.ctimeMs && m.ino === st.ino) return m.sha256;
    onHash?.(st.size);
    const sha256 = hashFile(path, onBytes && ((done) => onBytes(done, st.size)));
    this.hashed += 1;
    this.memo.set(path, { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, sha256 });
    sha256.catch(() => this.memo.delete(path));
    return sha256;
  }
}

export function hashFile(path: string, onBytes?: (done: number) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let done = 0;
    createReadStream(path)
      .on('data', (chunk) => {
        h.update(chunk);
        done += chunk.length;
        onBytes?.(done);
      })
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}
