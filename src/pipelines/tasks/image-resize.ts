import { checkArgs, checkRule } from '../arguments.js';
import { TASK_ARGS, TASK_RULES } from './specs.js';
import { anyImage, resizeImage, type Fit, type RawImage } from '../../media/image.js';

/**
 * Resizes with sharp (lanczos3). Given one side, the other follows the aspect ratio; given both,
 * `fit` says how: fill (stretch), contain (letterbox), cover (crop), inside or outside.
 */
export async function imageResize(args: Record<string, unknown>): Promise<RawImage> {
  const a = checkArgs('image_resize', args, TASK_ARGS.image_resize);
  checkRule('image_resize', a, TASK_RULES.image_resize);
  const src = await anyImage(a.image as string | RawImage, 'image_resize');
  // With one side given, sharp's "fill" would keep the other side as it is; the ratio must follow.
  const fit = a.width === undefined || a.height === undefined ? 'inside' : (a.fit as Fit);
  return resizeImage(src, { width: a.width as number | undefined, height: a.height as number | undefined }, fit);
}
