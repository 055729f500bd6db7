import { checkArgs } from '../arguments.js';
import { TASK_ARGS } from './specs.js';
import { encodeImage, imageArg, IMAGE_FORMATS, isImage, type ImageFormat, type RawImage } from '../../media/image.js';
import type { EncodedFile } from '../../media/file.js';

/**
 * Encodes an image as PNG, JPEG or WebP. The step's file is written by the client (result.save,
 * which defaults to true for this task); the runner never writes files.
 */
export async function imageSave(args: Record<string, unknown>): Promise<EncodedFile> {
  const a = checkArgs('image_save', args, TASK_ARGS.image_save);
  const src = a.image as string | RawImage;
  const img = isImage(src) ? src : await imageArg(src, 'rgba', 'image_save');
  const format = a.format as ImageFormat;
  return { kind: 'file', content_type: IMAGE_FORMATS[format], data: await encodeImage(img, format, a.quality as number | undefined) };
}
