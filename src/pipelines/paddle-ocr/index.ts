// The paddle-ocr pipeline: PaddleOCR v4's detect → direction → recognise, on onnxruntime, with
// PaddleOCR's pre- and post-processing reimplemented in TypeScript.
import type * as ort from 'onnxruntime-node';
import { DwError } from '../../protocol/errors.js';
import type { Pipeline, PipelineContext } from '../types.js';
import { parseArgs } from './args.js';
import { fixDirection } from './classify.js';
import { cropTextLine, growQuad } from './crop.js';
import { buildDictionary } from './ctc.js';
import { DB_DEFAULTS } from './db-postprocess.js';
import { detect } from './detect.js';
import { distance, sortReadingOrder, type Point } from './geometry.js';
import { decodeImage } from './image.js';
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

/**
 * The session of an optional role, or undefined when the step does not give it. The context has
 * no "has role" query; the runner loads every given model before the run, so a rejection with
 * DW_ERR_INTERNAL can only mean the role was not given.
 */
async function optionalSession(ctx: PipelineContext, role: string): Promise<ort.InferenceSession | undefined> {
  try {
    return await ctx.session(role);
  } catch (err) {
    if (err instanceof DwError && err.code === 'DW_ERR_INTERNAL') return undefined;
    throw err;
  }
}

async function read(args: Record<string, unknown>, ctx: PipelineContext): Promise<OcrResult> {
  const opts = parseArgs(args);
  const stopIfCancelled = () => {
    if (ctx.signal.aborted) throw ctx.signal.reason;
  };
  stopIfCancelled();
  const img = await decodeImage(opts.image);
  const [det, rec, keys, cls] = await Promise.all([ctx.session('det'), ctx.session('rec'), ctx.text('keys'), optionalSession(ctx, 'cls')]);
  const dictionary = buildDictionary(keys);
  stopIfCancelled();

  const found = await detect(det, img, { ...DB_DEFAULTS, boxThresh: opts.box_thresh, unclipRatio: opts.unclip_ratio, limitSideLen: opts.limit_side_len });
  // Reading order first, as PaddleOCR does, so everything after works on lines in output order.
  const boxes = sortReadingOrder(found);
  stopIfCancelled();
  const RM = Number(process.env.RM ?? 0);
  let crops = boxes.map((b) => cropTextLine(img, growQuad(b.box, RM * Math.min(distance(b.box[0], b.box[3]), distance(b.box[0], b.box[1])))));
  if (cls) crops = await fixDirection(cls, crops, stopIfCancelled);
  const decoded = await recognize(rec, crops, dictionary, (done) => {
    stopIfCancelled();
    ctx.progress(done, crops.length, 'boxes');
  });

  const lines: OcrLine[] = [];
  boxes.forEach((b, i) => {
    const { text, score } = decoded[i]!;
    // An empty reading carries nothing even when min_score is 0.
    if (score >= opts.min_score && text.trim() !== '') lines.push({ text, score, box: b.box.map((p): Point => [p[0], p[1]]) });
  });
  return { text: lines.map((l) => l.text).join('\n'), lines };
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
