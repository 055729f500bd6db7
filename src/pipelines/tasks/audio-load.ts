import { checkArgs } from '../arguments.js';
import { TASK_ARGS } from './specs.js';
import { audioArg } from '../../media/audio-file.js';
import { toMono, type Audio } from '../../media/audio.js';

/** Decodes a WAV file (PCM 8/16/24/32-bit or float, any rate and channel count). */
export async function audioLoad(args: Record<string, unknown>): Promise<Audio> {
  const a = checkArgs('audio_load', args, TASK_ARGS.audio_load);
  const got = await audioArg(a.audio as string | Audio, 'audio_load');
  return a.mono ? toMono(got) : got;
}
