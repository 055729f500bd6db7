// Command lines of dw and dwd alike: parseArgs reads `--keep-alive -1` as two options; a negative
// number right after an option that takes a value is that option's value.
export function joinNegativeValues(args: string[], takesValue: (name: string) => boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i]!.startsWith('--') ? args[i]!.slice(2) : null;
    if (name && takesValue(name) && /^-\d/.test(args[i + 1] ?? '')) out.push(`${args[i]}=${args[++i]}`);
    else out.push(args[i]!);
  }
  return out;
}
