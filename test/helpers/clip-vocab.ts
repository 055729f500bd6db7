// A small CLIP vocabulary built the way OpenAI's simple_tokenizer.py builds the real one: the 256
// byte characters of bytes_to_unicode (printable bytes first, in byte order), the same with "</w>",
// one entry per merge in merge order, then <|startoftext|> and <|endoftext|>. So "!" is 0, "a" is
// 64, "a</w>" is 320 (as in CLIP's 49408-entry vocabulary), merge k is 512 + k.

const PRINTABLE = [...range(33, 126), ...range(161, 172), ...range(174, 255)];

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

/** The byte characters, in vocabulary order. */
export function byteChars(): string[] {
  const rest = range(0, 255).filter((b) => !PRINTABLE.includes(b));
  return [...PRINTABLE.map((b) => String.fromCodePoint(b)), ...rest.map((_, i) => String.fromCodePoint(256 + i))];
}

export interface ClipFiles {
  vocab: string;
  merges: string;
  /** id of a token, for expectations written by hand. */
  id: (token: string) => number;
  bos: number;
  eos: number;
}

export function clipVocab(merges: string[]): ClipFiles {
  const chars = byteChars();
  const tokens = [...chars, ...chars.map((c) => `${c}</w>`), ...merges.map((m) => m.replace(' ', '')), '<|startoftext|>', '<|endoftext|>'];
  const vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));
  return {
    vocab: JSON.stringify(vocab),
    merges: `#version: 0.2\n${merges.join('\n')}\n`,
    id: (t) => {
      if (!(t in vocab)) throw new Error(`no token ${t}`);
      return vocab[t]!;
    },
    bos: vocab['<|startoftext|>']!,
    eos: vocab['<|endoftext|>']!,
  };
}

/** The merges the tests' exports use: enough for whole words, pieces of unknown words and a repeated pair. */
export const TEST_MERGES = [
  'l o',
  'lo w</w>',
  'e r</w>',
  'lo w',
  'e s',
  'es t</w>',
  'r e',
  'e d</w>',
  'f o',
  'fo x</w>',
  'a a',
  'c a',
  'ca t</w>',
  're d</w>',
  'w e',
];
