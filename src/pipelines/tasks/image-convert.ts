import { checkArgs } from '../arguments.js';
import { TASK_ARGS } from './specs.js';
import { imageArg, type ImageMode, type RawImage } from '../../media/image.js';

/** Converts between gray, RGB and RGBA (gray uses the usual luminance weights). */
export async function imageConvert(args: Record<string, unknown>): Promise<RawImage> {
  const a = checkArgs('image_convert', args, TASK_ARGS.image_convert);
  return imageArg(a.image as string | RawImage, a.mode as ImageMode, 'image_convert');
}
