import { DwError } from '../../protocol/errors.js';
import { pickField } from '../pick-field.js';
import { checkArgs } from '../arguments.js';
import { TASK_ARGS } from './specs.js';

/** Picks `path` (dotted, numeric parts index arrays) out of `value`. */
export function jsonPick(args: Record<string, unknown>): unknown {
  const a = checkArgs('json_pick', args, TASK_ARGS.json_pick);
  const path = a.path as string;
  const picked = pickField(a.value, path.split('.'));
  if (picked === undefined) throw new DwError('DW_ERR_BAD_REFERENCE', `json_pick: nothing at "${path}"`, { path });
  return picked;
}
