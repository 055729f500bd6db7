// Audio arguments: a WAV file's path (read here) or audio from an earlier step.
import { DwError } from '../protocol/errors.js';
import { decodeWav, type Audio } from './audio.js';
import { readInput } from './read.js';

export async function readAudio(path: string, owner: string): Promise<Audio> {
  const bytes = await readInput(path, owner, 'audio');
  try {
    return decodeWav(bytes, path);
  } catch (err) {
    if (err instanceof DwError) throw new DwError(err.code, `${owner}: ${err.message}`, err.details);
    throw err;
  }
}

export function audioArg(v: string | Audio, owner: string): Promise<Audio> {
  return typeof v === 'string' ? readAudio(v, owner) : Promise.resolve(v);
}
