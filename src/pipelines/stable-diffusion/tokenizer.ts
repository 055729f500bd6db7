// CLIP's tokenizer, exactly as Stable Diffusion's text encoders were trained on it: byte-level BPE
// read from the export's tokenizer/vocab.json and tokenizer/merges.txt. The steps follow OpenAI
// CLIP's simple_tokenizer.py and transformers' CLIPTokenizer: NFC, whitespace runs to one space,
// lower case, split by CLIP's pattern, each piece's UTF-8 bytes mapped to GPT-2's printable byte
// characters, "</w>" on a word's last symbol, pairs merged lowest rank first, then
// <|startoftext|> … <|endoftext|>, truncated to 77 (the end token kept) and padded. Small enough to
// own: the npm tokenizers read tokenizer.json, which optimum exports do not always carry.

export const MAX_LENGTH = 77;

const BOS = '<|startoftext|>';
const EOS = '<|endoftext|>';

/** CLIP's split pattern (simple_tokenizer.py), case-insensitive as there; `u` for \p classes. */
const PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

/** GPT-2's bytes_to_unicode: every byte as a printable character, so BPE never sees whitespace or controls. */
function byteEncoder(): string[] {
  const keep: number[] = [];
  const add = (a: number, b: number) => {
    for (let i = a; i <= b; i++) keep.push(i);
  };
  add(33, 126);
  add(161, 172);
  add(174, 255);
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + extra++);
  return table;
}
const BYTES = byteEncoder();
const UTF8 = new TextEncoder();

export interface TokenizerFiles {
  vocab: string;
  merges: string;
  /** tokenizer_config.json and special_tokens_map.json, when the export has them. */
  config?: string;
  specialTokens?: string;
}

/** A special token as tokenizer_config.json writes it: a string, or an AddedToken object with `content`. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

function parseJson(text: string | undefined, what: string): Record<string, unknown> {
  if (text === undefined) return {};
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new Error(`${what} is not a JSON object`);
}

export class ClipTokenizer {
  private readonly vocab: Map<string, number>;
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, string[]>();
  readonly bos: number;
  readonly eos: number;
  readonly pad: number;

  constructor(files: TokenizerFiles) {
    const vocab = parseJson(files.vocab, 'tokenizer/vocab.json');
    this.vocab = new Map(Object.entries(vocab).filter((e): e is [string, number] => Number.isInteger(e[1])));
    // merges.txt: a "#version" header line, then "a b" per line, best (lowest rank) first.
    const lines = files.merges.split('\n').map((l) => l.replace(/\r$/, ''));
    let rank = 0;
    for (const line of lines) {
      if (line.startsWith('#version') || line.trim() === '') continue;
      const parts = line.split(' ');
      if (parts.length !== 2) throw new Error(`tokenizer/merges.txt: "${line.slice(0, 40)}" is not a pair`);
      this.ranks.set(`${parts[0]} ${parts[1]}`, rank++);
    }
    const config = {
      ...parseJson(files.specialTokens, 'tokenizer/special_tokens_map.json'),
      ...parseJson(files.config, 'tokenizer/tokenizer_config.json'),
    };
    const id = (token: string, role: string) => {
      const n = this.vocab.get(token);
      if (n === undefined) throw new Error(`the tokenizer's ${role} token "${token}" is not in tokenizer/vocab.json`);
      return n;
    };
    this.bos = id(tokenText(config.bos_token) ?? BOS, 'start');
    this.eos = id(tokenText(config.eos_token) ?? EOS, 'end');
    // SD 1.x pads with <|endoftext|>, SD 2.x with "!" (id 0): the export's config says which.
    this.pad = id(tokenText(config.pad_token) ?? EOS, 'pad');
    this.cache.set(BOS, [BOS]);
    this.cache.set(EOS, [EOS]);
  }

  /** The BPE symbols of one pre-tokenized piece (already in byte characters). */
  private bpe(piece: string): string[] {
    const hit = this.cache.get(piece);
    if (hit) return hit;
    const chars = [...piece];
    let word = [...chars.slice(0, -1), `${chars.at(-1)}</w>`];
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      // Merge every occurrence of that pair, left to right, as simple_tokenizer.py does.
      const a = word[best]!;
      const b = word[best + 1]!;
      const next: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i < word.length - 1 && word[i] === a && word[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(word[i]!);
      }
      word = next;
    }
    this.cache.set(piece, word);
    return word;
  }

  /** The text as CLIP normalises it before splitting. */
  static clean(text: string): string {
    return text.normalize('NFC').replace(/\s+/gu, ' ').trim().toLowerCase();
  }

  /** Token ids of the text, without start, end or padding. */
  tokenize(text: string): number[] {
    const ids: number[] = [];
    for (const m of ClipTokenizer.clean(text).matchAll(PATTERN)) {
      const piece = m[0] === BOS || m[0] === EOS ? m[0] : [...UTF8.encode(m[0])].map((b) => BYTES[b]).join('');
      for (const symbol of this.bpe(piece)) {
        const id = this.vocab.get(symbol);
        // Every single byte is in CLIP's vocabulary, so a symbol is missing only from a broken vocab.
        if (id === undefined) throw new Error(`tokenizer/vocab.json has no entry for "${symbol}"; is it CLIP's vocabulary?`);
        ids.push(id);
      }
    }
    return ids;
  }

  /** The text encoder's input: start, at most 75 tokens, end, then padding to 77. */
  encode(text: string): number[] {
    const body = this.tokenize(text).slice(0, MAX_LENGTH - 2);
    const ids = [this.bos, ...body, this.eos];
    while (ids.length < MAX_LENGTH) ids.push(this.pad);
    return ids;
  }
}
