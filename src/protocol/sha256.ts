// The sha256 that names a file sent by content: computed by dw before it offers a file, and by dwd
// on the bytes it received, the same way on both sides.
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

/**
 * The sha256 of an open file's first `size` bytes (all of it by default), read in place (a stream
 * of a FileHandle would close it when done). Bytes a writer appends meanwhile are not hashed.
 */
export async function sha256Of(fh: FileHandle, size = Number.POSITIVE_INFINITY): Promise<string> {
  const hash = createHash('sha256');
  const buf = Buffer.alloc(1024 * 1024);
  for (let at = 0; ; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - at), at);
    if (bytesRead === 0) return hash.digest('hex');
    hash.update(buf.subarray(0, bytesRead));
    at += bytesRead;
  }
}
