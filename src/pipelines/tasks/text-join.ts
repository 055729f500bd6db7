import { DwError } from '../../protocol/errors.js';

/** Joins strings, or the `text` field of step results, with a separator (default newline). */
export function textJoin(args: Record<string, unknown>): { text: string } {
  const { items, separator = '\n' } = args;
  if (!Array.isArray(items)) throw new DwError('DW_ERR_BAD_ARGUMENT', `text_join: "items" must be an array, got ${typeof items}`, { argument: 'items' });
  if (typeof separator !== 'string') throw new DwError('DW_ERR_BAD_ARGUMENT', `text_join: "separator" must be a string`, { argument: 'separator' });
  const parts = items.map((item, i) => {
    if (typeof item === 'string') return item;
    if (item !== null && typeof item === 'object' && typeof (item as { text?: unknown }).text === 'string') return (item as { text: string }).text;
    throw new DwError('DW_ERR_BAD_ARGUMENT', `text_join: items[${i}] is neither a string nor a result with "text"`, { argument: 'items', index: i });
  });
  return { text: parts.join(separator) };
}
