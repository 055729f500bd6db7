// `variable:NAME` and `previous_result:STEP[.field…]` references inside step arguments.

export type Reference = { kind: 'variable'; name: string } | { kind: 'previous_result'; step: string; field: string[] };

const VARIABLE = 'variable:';
export const PREVIOUS = 'previous_result:';

export function parseReference(value: unknown): Reference | null {
  if (typeof value !== 'string') return null;
  if (value.startsWith(VARIABLE)) return { kind: 'variable', name: value.slice(VARIABLE.length) };
  if (value.startsWith(PREVIOUS)) {
    const [step, ...field] = value.slice(PREVIOUS.length).split('.');
    return { kind: 'previous_result', step: step ?? '', field };
  }
  return null;
}

/** Replaces every reference in a JSON-like value (deeply) with what `resolve` returns for it. */
export function substitute(value: unknown, resolve: (ref: Reference, raw: string) => unknown): unknown {
  const ref = parseReference(value);
  if (ref) return resolve(ref, value as string);
  if (Array.isArray(value)) return value.map((v) => substitute(v, resolve));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, resolve)]));
  }
  return value;
}

/** Every reference in a value, with the JSON path (relative) where it stands. */
export function collectReferences(value: unknown, path: (string | number)[] = []): Array<{ ref: Reference; path: (string | number)[] }> {
  const ref = parseReference(value);
  if (ref) return [{ ref, path }];
  if (Array.isArray(value)) return value.flatMap((v, i) => collectReferences(v, [...path, i]));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => collectReferences(v, [...path, k]));
  }
  return [];
}

export { pickField } from '../pipelines/pick-field.js';

export function jsonPath(path: readonly (string | number | symbol)[]): string {
  return (
    '$' +
    path
      .map((p) =>
        typeof p === 'number' ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(String(p)) ? `.${String(p)}` : `[${JSON.stringify(String(p))}]`,
      )
      .join('')
  );
}
