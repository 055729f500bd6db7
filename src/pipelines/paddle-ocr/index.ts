// The paddle-ocr pipeline: PaddleOCR v4's detect → direction → recognise, on onnxruntime, with
// PaddleOCR's pre- and post-processing reimplemented in TypeScript.
import { DwError } from '../../protocol/errors.js';
import type { Pipeline, PipelineContext } from '../types.js';
import { parseArgs } from './args.js';
import { fixDirection } from './classify.js';
import { readingCrop } from './crop.js';
import { dictionaryOf } from './ctc.js';
import { DB_DEFAULTS } from './db-postprocess.js';
import { detect } from './detect.js';
import { sortReadingOrder, type Point } from './geometry.js';
import { imageArg } from '../../media/image.js';
import { recognize } from './recognize.js';

export interface OcrLine {
  text: string;
  score: number;
  /** Corners clockwise from top-left, integer pixels of the input image. */
  box: Point[];
}

export interface OcrResult {
  /** The lines' text joined by newlines, in reading order. */
  text: string;
  lines: OcrLine[];
}

/** Boxes whose vertical centres are closer than half the smaller height sit on one printed row. */
function sameRow(a: Point[], b: Point[]): boolean {
  const span = (q: Point[]) => {
    const ys = q.map((p) => p[1]);
    return { mid: (Math.min(...ys) + Math.max(...ys)) / 2, h: Math.max(...ys) - Math.min(...ys) };
  };
  const sa = span(a);
  const sb = span(b);
  return Math.abs(sa.mid - sb.mid) < Math.min(sa.h, sb.h) / 2;
}

/** The page's text: boxes of one row (a receipt's item and its price) joined by a space, rows by newlines. */
export function joinRows(lines: OcrLine[]): string {
  const rows: OcrLine[][] = [];
  for (const line of lines) {
    const row = rows.at(-1);
    if (row && sameRow(row.at(-1)!.box, line.box)) row.push(line);
    else rows.push([line]);
  }
  return rows.map((r) => r.map((l) => l.text).join(' ')).join('\n');
}

async function read(args: Record<string, unknown>, ctx: PipelineContext): Promise<OcrResult> {
  const opts = parseArgs(args);
  const stopIfCancelled = () => {
    if (ctx.signal.aborted) throw ctx.signal.reason;
  };
  stopIfCancelled();
  const img = await imageArg(opts.image, 'rgb', 'paddle-ocr');
  const [det, rec, keys, cls] = await Promise.all([
    ctx.session('det'),
    ctx.session('rec'),
    ctx.text('keys'),
    ctx.has('cls') ? ctx.session('cls') : undefined,
  ]);
  const dictionary = dictionaryOf(keys);
  stopIfCancelled();

  const found = await detect(det, img, {
    ...DB_DEFAULTS,
    boxThresh: opts.box_thresh,
    unclipRatio: opts.unclip_ratio,
    limitSideLen: opts.limit_side_len,
  });
  // Reading order first, as PaddleOCR does, so everything after works on lines in output order.
  const boxes = sortReadingOrder(found);
  stopIfCancelled();
  let crops = boxes.map((b) => readingCrop(img, b.box));
  if (cls) crops = await fixDirection(cls, crops, stopIfCancelled);
  const decoded = await recognize(rec, crops, dictionary, (done) => {
    ctx.progress(done, crops.length, 'boxes');
    stopIfCancelled();
  });

  const lines: OcrLine[] = [];
  boxes.forEach((b, i) => {
    const { score } = decoded[i]!;
    // The margin around a crop sometimes reads as a leading or trailing space; a box holds one
    // line, so those never mean anything. An empty reading is dropped even when min_score is 0.
    const text = decoded[i]!.text.trim();
    if (score >= opts.min_score && text !== '') lines.push({ text, score, box: b.box.map((p): Point => [p[0], p[1]]) });
  });
  return { text: joinRows(lines), lines };
}

export const paddleOcr: Pipeline = {
  type: 'paddle-ocr',
  roles: [
    { name: 'det', kind: 'onnx', required: true },
    { name: 'cls', kind: 'onnx', required: false },
    { name: 'rec', kind: 'onnx', required: true },
    { name: 'keys', kind: 'text', required: true },
  ],
  async run(args, ctx) {
    try {
      return await read(args, ctx);
    } catch (err) {
      if (err instanceof DwError || (ctx.signal.aborted && err === ctx.signal.reason)) throw err;
      // onnxruntime failures and models that do not fit their role end up here.
      throw new DwError('DW_ERR_RUN_FAILED', `paddle-ocr: ${err instanceof Error ? err.message : String(err)}`);
    }
  },
};
