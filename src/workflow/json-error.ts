// Where JSON.parse gave up. V8 on Node 20 often names only the token, not its position, and a
// person fixing a workflow file wants a line and column. A small recursive-descent scan of the
// same grammar finds the first offending offset.

export function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const expect = (s: string) => (text.startsWith(s, i) ? (i += s.length) : fail());
  const str = () => {
    expect('"');
    while (i < text.length && text[i] !== '"') {
      if (text[i]! < ' ') fail();
      i += text[i] === '\\' ? 2 : 1;
    }
    expect('"');
  };
  const num = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m) fail();
    i += m![0].length;
  };
  const list = (close: string, item: () => void) => {
    i++;
    ws();
    if (text[i] === close) return void i++;
    for (;;) {
      item();
      ws();
      if (text[i] === ',') {
        i++;
        continue;
      }
      expect(close);
      return;
    }
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') return list('}', () => (ws(), str(), ws(), expect(':'), value()));
    if (c === '[') return list(']', value);
    if (c === '"') return str();
    if (c === 't') return void expect('true');
    if (c === 'f') return void expect('false');
    if (c === 'n') return void expect('null');
    return num();
  };
  try {
    value();
    ws();
    return i < text.length ? i : -1;
  } catch (at) {
    return at as number;
  }
}

export function lineCol(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: before[before.length - 1]!.length + 1 };
}
