import { DwError } from '../../protocol/errors.js';
import { pickField } from '../../workflow/references.js';
import { checkArgs } from '../arguments.js';

/** Picks `path` (dotted, numeric parts index arrays) out of `value`. */
export function jsonPick(args: Record<string, unknown>): unknown {
  const a = checkArgs('json_pick', args, {
    value: { expected: 'any value', ok: () => true },
    path: { expected: 'a non-empty dotted path, e.g. "lines.0.text"', ok: (v) => typeof v === 'string' && v !== '' },
  });
  const path = a.path as string;
  const picked = pickField(a.value, path.split('.'));
  if (picked === undefined) throw new DwError('DW_ERR_BAD_REFERENCE', `json_pick: nothing at "${path}"`, { path });
  return picked;
}
