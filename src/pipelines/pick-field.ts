// A dotted field path into a value: what workflow references (previous_result:step.a.b) and the
// json_pick and text_template tasks both follow. Here, below both, so pipelines need nothing of
// the workflow layer.

/** Follows a dotted field path into a step result; undefined when any part is missing. */
export function pickField(value: unknown, field: string[]): unknown {
  let cur = value;
  for (const part of field) {
    if (cur === null || typeof cur !== 'object') return undefined;
    // Own fields only: "constructor" or "__proto__" must not reach into the prototype chain.
    if (!Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}
