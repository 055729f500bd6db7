// Draws the OCR sample images in workflows/samples/ and, next to each NAME.png, NAME.txt with the
// exact text printed on it (one line per printed row). Run: npx tsx scripts/make-samples.ts
//
// Each page is an SVG rasterised by sharp (librsvg + pango) with the DejaVu fonts, dark ink on
// white paper.
// A row may have a right-aligned part (a price), as on a real receipt; its truth line is the left
// and right parts joined by one space, since the width of the gap is layout, not text.
// Everything is deterministic, so re-running the script rewrites the same files.
import { existsSync } from 'node:fs';
import { writeFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const OUT = join(ROOT, 'workflows', 'samples');
const FONT_DIR = '/usr/share/fonts/truetype/dejavu';

interface Font {
  family: string;
  file: string;
  size: number;
  weight?: 'bold';
}

interface Row {
  left: string;
  right?: string;
  /** Overrides the sample's font for this row (a heading). */
  font?: Font;
  /** Overrides the sample's ink for this row. */
  ink?: string;
  center?: boolean;
}

interface Sample {
  name: string;
  width: number;
  margin: number;
  lineGap: number;
  font: Font;
  ink: string;
  /** Page colour; white unless given. */
  paper?: string;
  rows: Row[];
}

const sans = (size: number, weight?: 'bold'): Font => ({
  family: 'DejaVu Sans',
  file: weight ? 'DejaVuSans-Bold.ttf' : 'DejaVuSans.ttf',
  size,
  weight,
});
const serif = (size: number): Font => ({ family: 'DejaVu Serif', file: 'DejaVuSerif.ttf', size });
const mono = (size: number): Font => ({ family: 'DejaVu Sans Mono', file: 'DejaVuSansMono.ttf', size });

const SAMPLES: Sample[] = [
  {
    name: 'receipt',
    width: 640,
    margin: 40,
    lineGap: 14,
    font: sans(24),
    ink: '#1c1c1c',
    rows: [
      { left: 'FRESH MART', font: sans(32, 'bold'), center: true },
      { left: '12 Harbour Road, Leeds', center: true },
      { left: 'Wholemeal bread', right: '2.10' },
      { left: 'Milk 2L', right: '1.65' },
      { left: 'Free range eggs x12', right: '3.40' },
      { left: 'Apples 1kg', right: '2.95' },
      { left: 'Coffee beans 250g', right: '5.80' },
      { left: 'TOTAL', right: '15.90', font: sans(26, 'bold') },
      { left: 'Paid by card. Thank you!', center: true },
    ],
  },
  {
    name: 'paragraph-serif',
    width: 820,
    margin: 48,
    lineGap: 12,
    font: serif(26),
    ink: '#222222',
    rows: [
      { left: 'The old lighthouse stood at the end of the pier,' },
      { left: 'its white paint worn thin by decades of salt and' },
      { left: 'wind. Every evening the keeper climbed the stairs' },
      { left: 'to light the lamp, and ships far out at sea would' },
      { left: 'turn their bows toward the safety of the harbour.' },
    ],
  },
  {
    name: 'codes-mono',
    width: 560,
    margin: 44,
    lineGap: 16,
    font: mono(26),
    ink: '#111111',
    rows: [
      { left: 'Order: 4821-7735-9264' },
      { left: 'Tracking: JX58 3317 9042 UK' },
      { left: 'Date: 2024-11-23 14:05' },
      { left: 'Invoice INV-30918' },
      { left: 'Amount due: 1,284.50 EUR' },
    ],
  },
  {
    // A red heading, so that the order of the colour channels fed to the models matters here.
    // No capital I in sans: DejaVu Sans draws I and l alike, and the model reads "CAUTION" as
    // "CAUTlON" (a true ambiguity of the glyph, not of the pipeline).
    name: 'label',
    width: 700,
    margin: 40,
    lineGap: 18,
    font: sans(30),
    ink: '#141414',
    rows: [
      { left: 'DANGER: Hot Surface!', font: sans(36, 'bold'), ink: '#b00000', center: true },
      { left: 'Do not touch while in use.', center: true },
      { left: 'Keep away from children & pets.', center: true },
      { left: 'Model HX-220 (Made in Spain)', center: true },
    ],
  },
  {
    name: 'small-print',
    width: 600,
    margin: 36,
    lineGap: 10,
    font: sans(19),
    ink: '#262626',
    rows: [
      { left: 'Terms and conditions: returns are accepted within' },
      { left: '30 days of purchase with a valid receipt. Items must' },
      { left: 'be unused and in their original packaging. Refunds' },
      { left: 'are made to the original payment method; allow up' },
      { left: 'to 5 working days for the money to reach you.' },
    ],
  },
];

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function textElement(text: string, font: Font, ink: string, x: number, baseline: number, anchor: 'start' | 'middle' | 'end'): string {
  const weight = font.weight === 'bold' ? ' font-weight="bold"' : '';
  return `<text x="${x}" y="${baseline}" font-family="${font.family}" font-size="${font.size}"${weight} fill="${ink}" text-anchor="${anchor}" xml:space="preserve">${escapeXml(text)}</text>`;
}

// An SVG with one <text> per part, placed on fixed baselines, so rows keep an even pitch whatever
// their ascenders and descenders (pango-rendered text images are cropped to their ink instead).
async function draw(sample: Sample): Promise<Buffer> {
  const parts: string[] = [];
  let baseline = sample.margin;
  for (const [i, row] of sample.rows.entries()) {
    const font = row.font ?? sample.font;
    const ink = row.ink ?? sample.ink;
    // Cap height of DejaVu is ~0.73 em and descenders ~0.24 em; leave the gap between rows' ink.
    baseline += i === 0 ? Math.round(font.size * 0.76) : Math.round(font.size * 1.0) + sample.lineGap;
    if (row.center) parts.push(textElement(row.left, font, ink, sample.width / 2, baseline, 'middle'));
    else parts.push(textElement(row.left, font, ink, sample.margin, baseline, 'start'));
    if (row.right) parts.push(textElement(row.right, font, ink, sample.width - sample.margin, baseline, 'end'));
  }
  const height = baseline + Math.round(sample.font.size * 0.24) + sample.margin;
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${sample.width}" height="${height}">` +
    `<rect width="100%" height="100%" fill="${sample.paper ?? '#ffffff'}"/>${parts.join('')}</svg>`;
  const png = await sharp(Buffer.from(svg)).flatten({ background: '#ffffff' }).removeAlpha().png({ compressionLevel: 9 }).toBuffer();
  await assertFits(sample, png);
  return png;
}

// A row wider than the page would be clipped silently; the truth file would then lie.
async function assertFits(sample: Sample, png: Buffer): Promise<void> {
  const { data, info } = await sharp(png).greyscale().raw().toBuffer({ resolveWithObject: true });
  const edge = Math.floor(sample.margin / 3);
  const paper = data[0]!;
  for (let y = 0; y < info.height; y++) {
    for (const x of [edge, info.width - 1 - edge]) {
      if (Math.abs(data[y * info.width + x]! - paper) > 40)
        throw new Error(`${sample.name}: ink at x=${x}, y=${y}: a row is wider than the page`);
    }
  }
}

function truth(sample: Sample): string {
  return sample.rows.map((r) => (r.right ? `${r.left} ${r.right}` : r.left)).join('\n') + '\n';
}

// fontconfig silently substitutes a missing family, which would make the samples differ per machine.
for (const font of SAMPLES.flatMap((s) => [s.font, ...s.rows.flatMap((r) => (r.font ? [r.font] : []))])) {
  if (!existsSync(join(FONT_DIR, font.file)))
    throw new Error(`font ${font.family} is not installed (${join(FONT_DIR, font.file)}); install fonts-dejavu-core`);
}

await mkdir(OUT, { recursive: true });
for (const sample of SAMPLES) {
  const png = await draw(sample);
  await writeFile(join(OUT, `${sample.name}.png`), png);
  await writeFile(join(OUT, `${sample.name}.txt`), truth(sample));
  const meta = await sharp(png).metadata();
  console.log(`${sample.name}.png ${meta.width}x${meta.height} ${(png.length / 1024).toFixed(1)} KB`);
}
