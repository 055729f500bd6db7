// What `dw run` prints on stdout without --json: what a person wants to read, not every value.
// The last step's text when it has one (a receipt's total, the OCR of a page); otherwise one line
// per step. Tensors show as their type, shape and a few values. --json keeps everything.

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const isObject = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A step's text: the string itself or its `text` field. */
function textOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  return isObject(value) && typeof value.text === 'string' ? value.text : undefined;
}

/** A tensor as it travels in a result ({type, dims, data} or {type, dims, data_omitted}), in a line. */
function tensorLine(v: Record<string, Json>): string | null {
  if (typeof v.type !== 'string' || !Array.isArray(v.dims) || !('data' in v || 'data_omitted' in v)) return null;
  const shape = `${v.type} [${v.dims.join(', ')}]`;
  if (!Array.isArray(v.data)) return `${shape} (${v.data_omitted ?? 'values not sent'})`;
  return v.data.length <= 8
    ? `${shape} = [${v.data.join(', ')}]`
    : `${shape}: ${v.data.length} values (dw run --json shows them; result.save keeps them)`;
}

/** Strings longer than this are cut in the text view (--json keeps them whole). */
const LONG_STRING = 1000;

/** Replaces tensors with their one-line description and cuts long strings, deeply. */
function shortened(value: Json): Json {
  if (typeof value === 'string' && value.length > LONG_STRING)
    return `${value.slice(0, LONG_STRING)}… (${value.length} characters; dw run --json shows them)`;
  if (Array.isArray(value)) return value.map(shortened);
  if (!isObject(value)) return value;
  const line = tensorLine(value);
  if (line !== null) return line;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shortened(v)]));
}

/** One line about any step value. */
export function summary(value: unknown): string {
  const text = textOf(value);
  if (text !== undefined) return JSON.stringify(text.length > 120 ? `${text.slice(0, 117)}...` : text);
  if (isObject(value)) {
    const channels = `${value.channels} channel${value.channels === 1 ? '' : 's'}`;
    if (value.kind === 'image') return `image ${value.width}x${value.height}, ${channels}`;
    if (value.kind === 'audio') return `audio ${value.duration_s} s at ${value.sample_rate} Hz, ${channels}`;
    if (value.kind === 'file') return `${value.content_type}, ${value.bytes} bytes`;
    const tensor = tensorLine(value);
    if (tensor !== null) return tensor;
  }
  const json = JSON.stringify(shortened(value as Json)) ?? 'null';
  if (json.length <= 120) return json;
  return isObject(value) ? `{ ${Object.keys(value).join(', ')} } (dw run --json shows it)` : `${json.slice(0, 117)}...`;
}

/** The whole of stdout for a run's results. */
export function renderResults(results: Record<string, unknown>): string {
  const steps = Object.entries(results);
  if (steps.length === 0) return '';
  const last = steps.at(-1)![1];
  const text = textOf(last);
  if (text !== undefined) return text === '' || text.endsWith('\n') ? text : `${text}\n`;
  if (steps.length === 1) return `${JSON.stringify(shortened(last as Json), null, 2)}\n`;
  const width = Math.max(...steps.map(([name]) => name.length));
  return `${steps.map(([name, value]) => `${name.padEnd(width)}  ${summary(value)}`).join('\n')}\n`;
}
