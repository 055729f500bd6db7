// CLIP's tokenizer on a small vocabulary built as CLIP's is (test/helpers/clip-vocab.ts): every
// expected id below is worked out by hand from that layout (byte "a" is 64, "a</w>" 320, merge k
// is 512 + k), so a wrong byte table, split pattern, merge order, special token or padding fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClipTokenizer, MAX_LENGTH } from '../src/pipelines/stable-diffusion/tokenizer.js';
import { clipVocab, TEST_MERGES } from './helpers/clip-vocab.js';

const v = clipVocab(TEST_MERGES);
const tok = new ClipTokenizer({ vocab: v.vocab, merges: v.merges });
// Hand-computed ids: merges are 512 + index in TEST_MERGES; a byte char c (33..126) is c - 33.
const LOW_W = 512 + 1; // "low</w>"
const LOW = 512 + 3; // "low"
const ER_W = 512 + 2; // "er</w>"
const EST_W = 512 + 5; // "est</w>"
const FOX_W = 512 + 9;
const A_W = 320; // "a</w>"
const BANG_W = 256 + 0; // "!</w>"

test('the layout is CLIP\'s: "!" 0, "a" 64, "a</w>" 320, start and end after the merges', () => {
  assert.deepEqual([v.id('!'), v.id('a'), v.id('a</w>'), v.id('low</w>')], [0, 64, 320, LOW_W]);
  assert.deepEqual([tok.bos, tok.eos], [512 + TEST_MERGES.length, 512 + TEST_MERGES.length + 1]);
});

test('lower case, whitespace runs cleaned, punctuation as its own piece', () => {
  assert.deepEqual(tok.tokenize('  A \t LOW\n\nFox!  '), [A_W, LOW_W, FOX_W, BANG_W]);
  assert.equal(ClipTokenizer.clean('  A \t LOW\n\nFox!  '), 'a low fox!');
  // "'t" is its own piece by CLIP's pattern; a run of punctuation stays one piece, digits go one by one.
  const t = (s: string) => s.charCodeAt(0) - 33;
  assert.deepEqual(tok.tokenize("don't...42"), [
    t('d'),
    t('o'),
    v.id('n</w>'),
    v.id("'"),
    v.id('t</w>'),
    v.id('.'),
    v.id('.'),
    v.id('.</w>'),
    v.id('4</w>'),
    v.id('2</w>'),
  ]);
});

test('an unknown word is split into the pieces its merges make, best rank first', () => {
  // lowest: l o w e s t</w> → lo w e s t</w> → low e s t</w> → low es t</w> → low est</w>
  assert.deepEqual(tok.tokenize('lowest'), [LOW, EST_W]);
  // wer: "e r</w>" (rank 2) wins over "w e" (rank 14), though "w e" comes first in the word
  assert.deepEqual(tok.tokenize('wer'), [v.id('w'), ER_W]);
  // lower: "e r</w>" (rank 2) merges before "lo w" (rank 3)
  assert.deepEqual(tok.tokenize('lower'), [LOW, ER_W]);
  // the pair merges wherever it occurs, left to right, not across an earlier merge: a a a a</w> → aa a a</w>
  assert.deepEqual(tok.tokenize('aaaa'), [512 + 10, v.id('a'), A_W]);
  // a word no merge touches is its bytes; é is two UTF-8 bytes, each a byte character
  assert.deepEqual(tok.tokenize('zé'), [v.id('z'), 127, 256 + 102]);
  assert.deepEqual(tok.tokenize('ze\u0301'), tok.tokenize('zé'), 'NFC first');
  // bytes outside printable Latin-1 map past 255: DEL is the 34th of them, U+00AD is C2 AD (AD the 68th)
  assert.deepEqual(tok.tokenize('\x7f'), [256 + 188 + 33]);
  assert.deepEqual(tok.tokenize('\u00ad'), [126, 256 + 188 + 67]);
});

test('start, end, padding with <|endoftext|> to 77, or with the pad_token the export names', () => {
  const ids = tok.encode('a fox');
  assert.equal(ids.length, MAX_LENGTH);
  assert.deepEqual(ids.slice(0, 5), [tok.bos, A_W, FOX_W, tok.eos, tok.eos]);
  assert.ok(ids.slice(3).every((i) => i === tok.eos));
  // SD 2.x: pad_token "!" (id 0), as a string in tokenizer_config.json or an AddedToken in special_tokens_map.json
  for (const files of [
    { config: JSON.stringify({ pad_token: '!' }) },
    { specialTokens: JSON.stringify({ pad_token: { content: '!', lstrip: false } }) },
  ]) {
    const t2 = new ClipTokenizer({ vocab: v.vocab, merges: v.merges, ...files });
    assert.deepEqual(t2.encode('a fox').slice(0, 6), [tok.bos, A_W, FOX_W, tok.eos, 0, 0]);
  }
  assert.deepEqual(tok.encode(''), [tok.bos, tok.eos, ...new Array(75).fill(tok.eos)]);
});

test('truncation keeps the start token, the first 75 tokens and the end token', () => {
  const ids = tok.encode(Array.from({ length: 100 }, (_, i) => (i % 2 ? 'fox' : 'low')).join(' '));
  assert.equal(ids.length, MAX_LENGTH);
  assert.equal(ids[0], tok.bos);
  assert.equal(ids[75], LOW_W, 'token 75 of the prompt (the 75th) is kept');
  assert.equal(ids[76], tok.eos);
});

test('a vocabulary without a token the text needs, or a broken merges file, is a clear error', () => {
  assert.throws(
    () => new ClipTokenizer({ vocab: JSON.stringify({ a: 1 }), merges: '' }),
    /start token "<\|startoftext\|>" is not in tokenizer\/vocab.json/,
  );
  assert.throws(() => new ClipTokenizer({ vocab: v.vocab, merges: '#version: 0.2\na b c\n' }), /merges.txt: "a b c" is not a pair/);
  assert.throws(() => new ClipTokenizer({ vocab: '[1]', merges: '' }), /vocab.json is not a JSON object/);
});
