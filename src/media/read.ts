// Reading an input file for a step: a missing or unreadable file is DW_ERR_FILE_NOT_FOUND naming
// the step type, what the file was for, and the errno.
import { readFile } from 'node:fs/promises';
import { DwError } from '../protocol/errors.js';

export async function readInput(path: string, owner: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DwError('DW_ERR_FILE_NOT_FOUND', `${owner}: cannot read ${what} ${path}: ${code ?? (err as Error).message}`, {
      path,
      ...(code ? { errno: code } : {}),
    });
  }
}
