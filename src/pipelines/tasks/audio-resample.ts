import { checkArgs } from '../arguments.js';
import { TASK_ARGS } from './specs.js';
import { audioArg } from '../../media/audio-file.js';
import { resample, toMono, type Audio } from '../../media/audio.js';

/** Changes the sample rate (band-limited, so no aliasing), optionally mixing down to mono first. */
export async function audioResample(args: Record<string, unknown>): Promise<Audio> {
  const a = checkArgs('audio_resample', args, TASK_ARGS.audio_resample);
  const got = await audioArg(a.audio as string | Audio, 'audio_resample');
  return resample(a.mono ? toMono(got) : got, a.sample_rate as number);
}
