import { checkArgs } from '../arguments.js';
import { TASK_ARGS } from './specs.js';
import { imageArg, type ImageMode, type RawImage } from '../../media/image.js';

/** Decodes an image file into pixels (rgb by default; transparency flattened onto white unless rgba). */
export async function imageLoad(args: Record<string, unknown>): Promise<RawImage> {
  const a = checkArgs('image_load', args, TASK_ARGS.image_load);
  return imageArg(a.image as string | RawImage, a.mode as ImageMode, 'image_load');
}
