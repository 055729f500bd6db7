// Runner memory over many warm runs, and what dw clear gives back.
//   1. start a daemon; read the RSS of its fresh runner (no model loaded)
//   2. run workflows/ocr.json N times (default 200); after each, read the runner's RSS (dw memory)
//   3. dw clear; read the RSS of the replacement runner
// Prints the growth from run 10 to run N and the RSS after clear against the fresh runner's, and
// writes bench/memory.svg (RSS per run). Usage: node bench/memory.mjs [runs]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const DW = join(ROOT, 'dist', 'cli', 'dw.cjs');
const runs = Number(process.argv[2] ?? 200);
const dir = mkdtempSync(join(tmpdir(), 'dwm-'));
const env = {
  ...process.env,
  DW_SOCKET: join(dir, 'dwd.sock'),
  XDG_STATE_HOME: join(dir, 'state'),
  DW_AUTOSTART: '1',
  DWD_CACHE_SIZE: '0',
};

function dw(...args) {
  const r = spawnSync(process.execPath, [DW, ...args], { env, cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dw ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
const runnerRss = () => JSON.parse(dw('memory', '--json')).runners[0].rss;
const MB = 1024 * 1024;

const rss = [];
let fresh, afterClear, cleared;
try {
  dw('validate', 'workflows/ocr.json'); // starts the daemon and its runner, loads nothing
  fresh = runnerRss();
  for (let i = 1; i <= runs; i++) {
    dw('run', 'workflows/ocr.json', '--quiet');
    rss.push(runnerRss());
    if (i % 25 === 0) process.stderr.write(`run ${i}/${runs}: runner rss ${(rss.at(-1) / MB).toFixed(1)} MB\n`);
  }
  cleared = JSON.parse(dw('clear', '--json'));
  afterClear = runnerRss();
} finally {
  spawnSync(process.execPath, [DW, 'stop'], { env });
  rmSync(dir, { recursive: true, force: true });
}

const at10 = rss[Math.min(9, rss.length - 1)];
const last = rss.at(-1);
const growth = (last - at10) / at10;
console.log(`memory: ${runs} warm runs of workflows/ocr.json (${process.version}, ${process.arch})\n`);
console.log('| measure | value |');
console.log('|---|---:|');
console.log(`| fresh runner RSS (no model) | ${(fresh / MB).toFixed(1)} MB |`);
console.log(`| runner RSS after run 1 | ${(rss[0] / MB).toFixed(1)} MB |`);
console.log(`| runner RSS after run 10 | ${(at10 / MB).toFixed(1)} MB |`);
console.log(`| runner RSS after run ${runs} | ${(last / MB).toFixed(1)} MB |`);
console.log(`| growth run 10 → ${runs} | ${(growth * 100).toFixed(2)} % (target < 5 %) |`);
console.log(`| dw clear: freed (reported) | ${(cleared.freed_bytes / MB).toFixed(1)} MB |`);
console.log(`| runner RSS after dw clear | ${(afterClear / MB).toFixed(1)} MB |`);
console.log(`| after clear − fresh runner | ${((afterClear - fresh) / MB).toFixed(1)} MB (target within 10 MB) |`);

// A small line chart of RSS per run, with the fresh and after-clear levels for reference.
const W = 640,
  H = 240,
  P = 40;
const hi = Math.max(...rss, fresh, afterClear) * 1.05;
const x = (i) => P + ((W - 2 * P) * i) / Math.max(1, rss.length - 1);
const y = (v) => H - P - ((H - 2 * P) * v) / hi;
const pts = rss.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
  const v = hi * f;
  return `<line x1="${P}" x2="${W - P}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${P - 4}" y="${y(v) + 4}" text-anchor="end">${(v / MB).toFixed(0)}</text>`;
});
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="#fff"/>
${ticks.join('\n')}
<line x1="${P}" x2="${W - P}" y1="${y(fresh)}" y2="${y(fresh)}" stroke="#2a2" stroke-dasharray="4 3"/>
<text x="${W - P}" y="${y(fresh) - 4}" text-anchor="end" fill="#2a2">fresh runner ${(fresh / MB).toFixed(0)} MB; after dw clear ${(afterClear / MB).toFixed(0)} MB</text>
<polyline fill="none" stroke="#36c" stroke-width="1.5" points="${pts}"/>
<text x="${W / 2}" y="${H - 8}" text-anchor="middle">warm run (1 … ${runs})</text>
<text x="12" y="${H / 2}" transform="rotate(-90 12 ${H / 2})" text-anchor="middle">runner RSS (MB)</text>
<text x="${W / 2}" y="16" text-anchor="middle">runner RSS after each warm dw run of workflows/ocr.json</text>
</svg>
`;
writeFileSync(join(ROOT, 'bench', 'memory.svg'), svg);
console.log('\nwrote bench/memory.svg');
