import { DwError } from '../../protocol/errors.js';
import { pickField } from '../../workflow/references.js';

/** Picks `path` (dotted, numeric parts index arrays) out of `value`. */
export function jsonPick(args: Record<string, unknown>): unknown {
  const { value, path } = args;
  if (typeof path !== 'string' || path === '') throw new DwError('DW_ERR_BAD_ARGUMENT', 'json_pick: "path" must be a non-empty dotted path, e.g. "lines.0.text"', { argument: 'path' });
  const picked = pickField(value, path.split('.'));
  if (picked === undefined) throw new DwError('DW_ERR_BAD_REFERENCE', `json_pick: nothing at "${path}"`, { path });
  return picked;
}
