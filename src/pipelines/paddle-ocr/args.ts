// The paddle-ocr step's arguments: checked here, so a typo or a wrong type fails before any work
// with a message naming the argument, what it takes and what it got.
import { DwError } from '../../protocol/errors.js';
import { isImage, type RawImage } from '../../media/image.js';

export interface OcrArgs {
  /** A file path, or an image from an earlier step. */
  image: string | RawImage;
  min_score: number;
  box_thresh: number;
  unclip_ratio: number;
  limit_side_len: number;
}

interface Spec {
  expected: string;
  ok: (v: number) => boolean;
}

const NUMBERS: Record<Exclude<keyof OcrArgs, 'image'>, Spec & { default: number }> = {
  min_score: { default: 0.5, expected: 'a number from 0 to 1', ok: (v) => v >= 0 && v <= 1 },
  box_thresh: { default: 0.6, expected: 'a number from 0 to 1', ok: (v) => v >= 0 && v <= 1 },
  unclip_ratio: { default: 1.5, expected: 'a number above 0 and at most 10', ok: (v) => v > 0 && v <= 10 },
  // The cap bounds the detector's input tensor (a 4096 x 4096 page is ~200 MB of float32).
  limit_side_len: { default: 960, expected: 'an integer from 32 to 4096', ok: (v) => Number.isInteger(v) && v >= 32 && v <= 4096 },
};

export const ACCEPTED_ARGS: readonly string[] = ['image', ...Object.keys(NUMBERS)];

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  const shown = JSON.stringify(v) ?? String(v);
  return `${typeof v} ${shown.length > 60 ? `${shown.slice(0, 57)}...` : shown}`;
}

function bad(argument: string, expected: string, got: unknown): DwError {
  return new DwError('DW_ERR_BAD_ARGUMENT', `paddle-ocr: "${argument}" must be ${expected}, got ${describe(got)}`, { argument, expected, got: describe(got) });
}

export function parseArgs(args: Record<string, unknown>): OcrArgs {
  const unknown = Object.keys(args).filter((k) => !ACCEPTED_ARGS.includes(k));
  if (unknown.length > 0) {
    const names = unknown.map((k) => `"${k}"`).join(', ');
    throw new DwError('DW_ERR_BAD_ARGUMENT', `paddle-ocr: unknown argument${unknown.length > 1 ? 's' : ''} ${names}; accepted arguments: ${ACCEPTED_ARGS.join(', ')}`, { unknown, accepted: [...ACCEPTED_ARGS] });
  }
  const image = args.image;
  if (!isImage(image) && (typeof image !== 'string' || image === '')) throw bad('image', 'an image file or an image from an earlier step', image);
  const out: OcrArgs = { image, min_score: 0, box_thresh: 0, unclip_ratio: 0, limit_side_len: 0 };
  for (const [name, spec] of Object.entries(NUMBERS) as [keyof typeof NUMBERS, (typeof NUMBERS)[keyof typeof NUMBERS]][]) {
    const v = args[name];
    if (v === undefined) out[name] = spec.default;
    else if (typeof v !== 'number' || !Number.isFinite(v) || !spec.ok(v)) throw bad(name, spec.expected, v);
    else out[name] = v;
  }
  return out;
}
