// What a user does without dw: one process that loads the three OCR models, reads one image, exits.
// Usage: node bench/oneshot.mjs [image.png] [--dw-sessions]
// Plain JavaScript on the built pipeline code, so no TypeScript loader inflates its start.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { paddleOcr } from '../dist/pipelines/paddle-ocr/index.js';

const assets = join(import.meta.dirname, '..', 'node_modules', '@gutenye', 'ocr-models', 'assets');
const files = {
  det: 'ch_PP-OCRv4_det_infer.onnx',
  cls: 'ch_ppocr_mobile_v2.0_cls_infer.onnx',
  rec: 'ch_PP-OCRv4_rec_infer.onnx',
  keys: 'ppocr_keys_v1.txt',
};
// --dw-sessions: the session setup the daemon's runner uses (its options and graph rewrites), to
// tell what keeping models loaded saves from what dw's loading does better.
const dwSessions = process.argv.includes('--dw-sessions');
const setup = dwSessions ? { ...(await import('../dist/runner/sessions.js')), ...(await import('../dist/runner/graph-rewrite.js')) } : null;
const sessions = {};
for (const role of ['det', 'cls', 'rec']) {
  const path = join(assets, files[role]);
  sessions[role] = setup
    ? await ort.InferenceSession.create(
        setup.rewriteGraph(readFileSync(path))?.bytes ?? readFileSync(path),
        setup.sessionOptions({ providers: ['cpu'] }, 'cpu'),
      )
    : await ort.InferenceSession.create(path);
}
const ctx = {
  has: (role) => role in files,
  session: async (role) => sessions[role],
  text: (role) => readFile(join(assets, files[role]), 'utf8'),
  progress: () => {},
  signal: new AbortController().signal,
};
const image =
  process.argv.slice(2).find((a) => !a.startsWith('--')) ?? join(import.meta.dirname, '..', 'workflows', 'samples', 'receipt.png');
const result = await paddleOcr.run({ image, min_score: 0.5 }, ctx);
process.stdout.write(result.text + '\n');
