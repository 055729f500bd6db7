import { DwError } from '../../protocol/errors.js';
import { checkArgs } from '../arguments.js';
import { TASK_ARGS } from './specs.js';

/** Joins strings, or the `text` field of step results, with a separator (default newline). */
export function textJoin(args: Record<string, unknown>): { text: string } {
  const a = checkArgs('text_join', args, TASK_ARGS.text_join);
  const parts = (a.items as unknown[]).map((item, i) => {
    if (typeof item === 'string') return item;
    if (item !== null && typeof item === 'object' && typeof (item as { text?: unknown }).text === 'string')
      return (item as { text: string }).text;
    throw new DwError('DW_ERR_BAD_ARGUMENT', `text_join: items[${i}] is neither a string nor a result with "text"`, {
      argument: 'items',
      index: i,
    });
  });
  return { text: parts.join(a.separator as string) };
}
