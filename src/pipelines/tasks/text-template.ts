import { DwError } from '../../protocol/errors.js';
import { checkArgs } from '../arguments.js';
import { TASK_ARGS } from './specs.js';
import { pickField } from '../pick-field.js';

const PLACEHOLDER = /\{\{|\}\}|\{([A-Za-z_][\w-]*(?:\.[\w-]+)*)\}/g;

function show(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const t = (v as { text?: unknown } | null)?.text;
  return typeof t === 'string' ? t : undefined;
}

/**
 * Fills `{name}` or `{name.field}` placeholders from `values` (strings, numbers, or results with a
 * "text" field); `{{` and `}}` stand for literal braces. A placeholder with no value is an error.
 */
export function textTemplate(args: Record<string, unknown>): { text: string } {
  const a = checkArgs('text_template', args, TASK_ARGS.text_template);
  const values = a.values as Record<string, unknown>;
  const out = (a.template as string).replace(PLACEHOLDER, (m, path: string | undefined) => {
    if (!path) return m[0]!;
    const s = show(pickField(values, path.split('.')));
    if (s === undefined) {
      throw new DwError(
        'DW_ERR_BAD_ARGUMENT',
        `text_template: "{${path}}" has no text value; values: ${Object.keys(values).join(', ') || '(none)'}`,
        { argument: 'template', placeholder: path },
      );
    }
    return s;
  });
  return { text: out };
}
