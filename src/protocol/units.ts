// Durations and sizes as people type them, shared by dw's and dwd's flags.
import { DwError } from './errors.js';

export const MAX_DURATION_MS = 2 ** 31 - 1;

/** "300", "300s", "5m", "1h", "250ms" → milliseconds (a bare number is seconds). */
export function parseDuration(raw: string, name: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (!m) throw new DwError('DW_ERR_USAGE', `${name}: "${raw}" is not a duration; use e.g. 300, 300s, 5m, 1h or 250ms`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's']!;
  const ms = Math.round(Number(m[1]) * unit);
  if (ms <= 0) throw new DwError('DW_ERR_USAGE', `${name}: "${raw}" must be longer than zero`);
  // Node's timers fire at once past 2^31-1 ms (about 24.8 days) instead of waiting that long.
  if (ms > MAX_DURATION_MS)
    throw new DwError(
      'DW_ERR_USAGE',
      `${name}: "${raw}" is longer than the 24-day maximum${name.includes('keep-alive') || name.includes('KEEP_ALIVE') ? '; use -1 to keep models loaded until cleared' : ''}`,
    );
  return ms;
}

/** "67108864", "64M", "1G", "512KiB" → bytes. */
export function parseSize(raw: string, name: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMG]i?B?|B)?$/i.exec(raw.trim());
  if (!m) throw new DwError('DW_ERR_USAGE', `${name}: "${raw}" is not a size; use e.g. 67108864, 64M or 1G`);
  const unit = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? '').charAt(0).toLowerCase() as '' | 'b' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * unit);
}

/** A keep-alive: "-1" pins (never unloaded), "0" unloads right after the run, else a duration. */
export function parseKeepAlive(raw: string, name: string): number {
  const t = raw.trim();
  if (t === '-1') return -1;
  if (/^0+(ms|s|m|h)?$/.test(t)) return 0;
  return parseDuration(t, name);
}

/** Bytes as a person reads them in a message: "36.8 MB" (MiB, one decimal). */
export const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MB`;
