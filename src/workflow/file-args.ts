// Where a step's arguments name files: the catalog gives dotted patterns ("inputs.*.image"), and
// both the daemon (to resolve and check them) and the runner (to refuse a file path that arrives
// from a step result, which no check has seen) walk them the same way.

/** The paths of string values matching a dotted pattern, "*" for any key. */
export function fileArgPaths(args: unknown, pattern: string[], at: string[] = []): string[][] {
  if (pattern.length === 0) return typeof args === 'string' ? [at] : [];
  if (args === null || typeof args !== 'object' || Array.isArray(args)) return [];
  const [head, ...rest] = pattern;
  const keys = head === '*' ? Object.keys(args) : [head!];
  return keys.flatMap((k) => fileArgPaths((args as Record<string, unknown>)[k], rest, [...at, k]));
}
