import { checkArgs } from '../arguments.js';
import { TASK_ARGS } from './specs.js';
import { audioArg } from '../../media/audio-file.js';
import { encodeWav, type Audio } from '../../media/audio.js';
import type { EncodedFile } from '../../media/file.js';

/** Encodes audio as a 16-bit PCM WAV; the client writes it (result.save defaults to true here). */
export async function audioSave(args: Record<string, unknown>): Promise<EncodedFile> {
  const a = checkArgs('audio_save', args, TASK_ARGS.audio_save);
  return { kind: 'file', content_type: 'audio/wav', data: encodeWav(await audioArg(a.audio as string | Audio, 'audio_save')) };
}
