// What a user does without dw: one process that loads the three OCR models, reads one image, exits.
// Plain JavaScript on the built pipeline code, so no TypeScript loader inflates its start.
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
const sessions = {};
for (const role of ['det', 'cls', 'rec']) sessions[role] = await ort.InferenceSession.create(join(assets, files[role]));
const ctx = {
  has: (role) => role in files,
  session: async (role) => sessions[role],
  text: (role) => readFile(join(assets, files[role]), 'utf8'),
  progress: () => {},
  signal: new AbortController().signal,
};
const image = process.argv[2] ?? join(import.meta.dirname, '..', 'workflows', 'samples', 'receipt.png');
const result = await paddleOcr.run({ image, min_score: 0.5 }, ctx);
process.stdout.write(result.text + '\n');
