// The paddle-ocr step's arguments: checked here, so a typo or a wrong type fails before any work
// with a message naming the argument, what it takes and what it got.
import type { RawImage } from '../../media/image.js';
import { checkArgs, image, number } from '../arguments.js';

export interface OcrArgs {
  /** A file path, or an image from an earlier step. */
  image: string | RawImage;
  min_score: number;
  box_thresh: number;
  unclip_ratio: number;
  limit_side_len: number;
}

export const OCR_ARGS = {
  image,
  min_score: { ...number(0, 1), default: 0.5 },
  box_thresh: { ...number(0, 1), default: 0.6 },
  unclip_ratio: { ...number(0, 10, { above: true }), default: 1.5 },
  // The cap bounds the detector's input tensor (a 4096 x 4096 page is ~200 MB of float32).
  limit_side_len: { ...number(32, 4096, { int: true }), default: 960 },
};

export function parseArgs(args: Record<string, unknown>): OcrArgs {
  return checkArgs('paddle-ocr', args, OCR_ARGS) as unknown as OcrArgs;
}
