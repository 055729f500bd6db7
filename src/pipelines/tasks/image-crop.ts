import { DwError } from '../../protocol/errors.js';
import { checkArgs } from '../arguments.js';
import { TASK_ARGS } from './specs.js';
import { anyImage, type RawImage } from '../../media/image.js';

/** Cuts out a rectangle given in pixels; a rectangle reaching outside the image is an error, not a silent clamp. */
export async function imageCrop(args: Record<string, unknown>): Promise<RawImage> {
  const a = checkArgs('image_crop', args, TASK_ARGS.image_crop);
  const src = await anyImage(a.image as string | RawImage, 'image_crop');
  const [left, top, width, height] = [a.left, a.top, a.width, a.height] as number[];
  if (left! + width! > src.width || top! + height! > src.height) {
    throw new DwError(
      'DW_ERR_BAD_ARGUMENT',
      `image_crop: the rectangle ${width}x${height} at (${left}, ${top}) reaches outside the ${src.width}x${src.height} image`,
      { argument: 'width', image: [src.width, src.height], rect: [left, top, width, height] },
    );
  }
  const ch = src.channels;
  const out = new Uint8Array(width! * height! * ch);
  for (let y = 0; y < height!; y++) {
    const from = ((top! + y) * src.width + left!) * ch;
    out.set(src.data.subarray(from, from + width! * ch), y * width! * ch);
  }
  return { data: out, width: width!, height: height!, channels: ch };
}
