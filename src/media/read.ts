// Reading a file a user named (a workflow, a step's input): only a regular file, never a FIFO or a
// device. A missing or unreadable input is DW_ERR_FILE_NOT_FOUND naming the step type, what the
// file was for, and why.
import { constants, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { DwError } from '../protocol/errors.js';

/** A file that is not a regular one; `code` as an errno would be, for the messages that show it. */
class NotRegular extends Error {
  readonly code = 'ENOTREG';
}

/** What is at a path, for a message saying why it is not read, or not touched (daemon/listen.ts). */
export function kindOf(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isSocket()) return 'a socket';
  return 'a device';
}

/**
 * The bytes of a regular file of at most `maxBytes`. Opened non-blocking and checked on the open
 * descriptor: a blocking open of a FIFO waits in a libuv thread for a writer that may never come,
 * and a thread stuck there also holds the process's exit (dwd once ignored every SIGTERM so).
 */
export async function readRegularFile(path: string, maxBytes = Number.POSITIVE_INFINITY): Promise<Buffer> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new NotRegular(kindOf(st));
    if (st.size > maxBytes) throw new TooLarge(st.size, maxBytes);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

export class TooLarge extends Error {
  readonly code = 'EFBIG';
  constructor(
    readonly size: number,
    readonly max: number,
  ) {
    super(`${size} bytes, over the ${max}-byte limit`);
  }
}

/** Why a file could not be read, short: the errno, or what it is instead of a regular file. */
export function whyUnreadable(err: unknown): string {
  if (err instanceof NotRegular) return err.message;
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

export async function readInput(path: string, owner: string, what: string): Promise<Buffer> {
  try {
    return await readRegularFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DwError('DW_ERR_FILE_NOT_FOUND', `${owner}: cannot read ${what} ${path}: ${whyUnreadable(err)}`, {
      path,
      ...(code ? { errno: code } : {}),
    });
  }
}
