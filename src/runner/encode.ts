// Turns a step result into the bytes of a saved output. The runner encodes; the client writes the
// file (as the invoking user, under its own --output-dir).
import { DwError } from '../protocol/errors.js';

const ENCODERS: Record<string, (value: unknown, step: string) => Buffer> = {
  'application/json': (value) => Buffer.from(JSON.stringify(value, null, 2) + '\n'),
  'text/plain': (value, step) => {
    if (typeof value === 'string') return Buffer.from(value.endsWith('\n') ? value : value + '\n');
    const text = (value as { text?: unknown } | null)?.text;
    if (typeof text !== 'string') throw new DwError('DW_ERR_OUTPUT', `step "${step}": text/plain needs a string result or one with a "text" field`, { step });
    return Buffer.from(text.endsWith('\n') ? text : text + '\n');
  },
};

export function encodeResult(value: unknown, contentType: string, step: string): Buffer {
  const encode = ENCODERS[contentType];
  if (!encode) {
    throw new DwError('DW_ERR_OUTPUT', `step "${step}": its result cannot be saved as ${contentType}; this step type saves as ${Object.keys(ENCODERS).join(' or ')}`, { step, content_type: contentType });
  }
  return encode(value, step);
}
