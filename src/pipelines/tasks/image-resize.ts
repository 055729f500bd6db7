import { DwError } from '../../protocol/errors.js';
import { checkArgs, image, number, oneOf } from '../arguments.js';
import { anyImage, resizeImage, type Fit, type RawImage } from '../../media/image.js';

const side = { ...number(1, 16384, { int: true }), optional: true };

/**
 * Resizes with sharp (lanczos3). Given one side, the other follows the aspect ratio; given both,
 * `fit` says how: fill (stretch), contain (letterbox), cover (crop), inside or outside.
 */
export async function imageResize(args: Record<string, unknown>): Promise<RawImage> {
  const a = checkArgs('image_resize', args, { image, width: side, height: side, fit: { ...oneOf('fill', 'contain', 'cover', 'inside', 'outside'), default: 'fill' } });
  if (a.width === undefined && a.height === undefined) throw new DwError('DW_ERR_BAD_ARGUMENT', 'image_resize: give "width", "height" or both', { argument: 'width' });
  const src = await anyImage(a.image as string | RawImage, 'image_resize');
  // With one side given, sharp's "fill" would keep the other side as it is; the ratio must follow.
  const fit = a.width === undefined || a.height === undefined ? 'inside' : (a.fit as Fit);
  return resizeImage(src, { width: a.width as number | undefined, height: a.height as number | undefined }, fit);
}
