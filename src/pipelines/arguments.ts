// Argument checking shared by tasks and pipelines: one table per step type says what each argument
// takes, so a typo or a wrong type fails before any work, naming the argument, what it takes and
// what it got, and an unknown argument lists the accepted ones.
import { DwError } from '../protocol/errors.js';
import { isAudio } from '../media/audio.js';
import { isImage } from '../media/image-value.js';

export interface ArgSpec {
  expected: string;
  ok: (v: unknown) => boolean;
  /** Absent: the argument is required. */
  default?: unknown;
  optional?: boolean;
}

export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (isImage(v)) return `an image (${v.width}x${v.height})`;
  if (isAudio(v)) return 'audio';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  const shown = JSON.stringify(v) ?? String(v);
  return `${typeof v} ${shown.length > 60 ? `${shown.slice(0, 57)}...` : shown}`;
}

export function badArgument(owner: string, argument: string, expected: string, got: unknown): DwError {
  return new DwError('DW_ERR_BAD_ARGUMENT', `${owner}: "${argument}" must be ${expected}, got ${describeValue(got)}`, {
    argument,
    expected,
    got: describeValue(got),
  });
}

/**
 * Every way `args` fails `spec`: unknown names, missing required ones, values of the wrong kind.
 * The daemon asks this before a run (dw validate too), with `pending` telling which values are
 * not known yet (they come from an earlier step): those are checked by the run itself.
 */
export function argProblems(
  owner: string,
  args: Record<string, unknown>,
  spec: Record<string, ArgSpec>,
  pending: (v: unknown) => boolean = () => false,
): DwError[] {
  const problems: DwError[] = [];
  const accepted = Object.keys(spec);
  const unknown = Object.keys(args).filter((k) => !accepted.includes(k));
  if (unknown.length > 0) {
    const names = unknown.map((k) => `"${k}"`).join(', ');
    problems.push(
      new DwError(
        'DW_ERR_BAD_ARGUMENT',
        `${owner}: unknown argument${unknown.length > 1 ? 's' : ''} ${names}; accepted arguments: ${accepted.join(', ')}`,
        { unknown, accepted },
      ),
    );
  }
  for (const [name, s] of Object.entries(spec)) {
    const v = args[name];
    // null is a value (JSON has no "absent"), so `"min_score": null` is an error, not a default.
    if (v === undefined ? !('default' in s) && !s.optional : !pending(v) && !s.ok(v))
      problems.push(badArgument(owner, name, s.expected, v));
  }
  return problems;
}

/** Checks `args` against `spec` (the first problem is thrown); returns them with defaults filled in. */
export function checkArgs(owner: string, args: Record<string, unknown>, spec: Record<string, ArgSpec>): Record<string, unknown> {
  const [first] = argProblems(owner, args, spec);
  if (first) throw first;
  const out: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(spec)) {
    const v = args[name];
    if (v !== undefined) out[name] = v;
    else if ('default' in s) out[name] = s.default;
  }
  return out;
}

/**
 * A rule between arguments (one needs another): the problem in words, or null. Runs on checked
 * arguments; before a run, a value from an earlier step is still its reference string, so a rule
 * judges only values of the kind it expects (a number it compares, a value being there at all).
 */
export type ArgRule = (a: Record<string, unknown>) => string | null;

/** Throws the rule's problem, if it has one, as a bad argument of `owner`. */
export function checkRule(owner: string, a: Record<string, unknown>, rule: ArgRule | undefined): void {
  const why = rule?.(a);
  if (why) throw new DwError('DW_ERR_BAD_ARGUMENT', `${owner}: ${why}`, {});
}

// The usual argument kinds.
export const number = (min: number, max: number, opts: { int?: boolean; above?: boolean } = {}): Pick<ArgSpec, 'expected' | 'ok'> => ({
  expected:
    `${opts.int ? 'an integer' : 'a number'} ${opts.above ? `above ${min}` : `from ${min}`} ${max === Infinity ? 'up' : `to ${max}`}`.replace(
      ' up',
      ' or more',
    ),
  ok: (v) =>
    typeof v === 'number' && Number.isFinite(v) && (opts.above ? v > min : v >= min) && v <= max && (!opts.int || Number.isInteger(v)),
});
export const oneOf = (...choices: string[]): Pick<ArgSpec, 'expected' | 'ok'> => ({
  expected: `one of ${choices.map((c) => `"${c}"`).join(', ')}`,
  ok: (v) => typeof v === 'string' && choices.includes(v),
});
export const text: Pick<ArgSpec, 'expected' | 'ok'> = { expected: 'a string', ok: (v) => typeof v === 'string' };
export const boolean: Pick<ArgSpec, 'expected' | 'ok'> = { expected: 'true or false', ok: (v) => typeof v === 'boolean' };
/** A path (resolved by the daemon before the run) or an image from an earlier step. */
export const image: Pick<ArgSpec, 'expected' | 'ok'> = {
  expected: 'an image file or an image from an earlier step',
  ok: (v) => (typeof v === 'string' && v !== '') || isImage(v),
};
export const audio: Pick<ArgSpec, 'expected' | 'ok'> = {
  expected: 'a WAV file or audio from an earlier step',
  ok: (v) => (typeof v === 'string' && v !== '') || isAudio(v),
};
