// dwd's JSON log lines as a person reads them, for dw logs and for the lines dw shows when a daemon
// it started fails.
import { closeSync, openSync, readSync, fstatSync } from 'node:fs';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const SKIP = new Set(['level', 'time', 'pid', 'msg', 'hostname']);

/** One pino JSON line as a person reads it: time, level, message, then the other fields. */
export function humanLine(line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = typeof rec.time === 'string' ? rec.time.slice(11, 19) : '';
  const level = LEVELS[rec.level as number] ?? String(rec.level);
  const rest = Object.entries(rec)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${time} ${level.padEnd(5)} ${rec.msg ?? ''}${rest ? `  ${rest}` : ''}`;
}

/**
 * The log lines one daemon wrote from `offset` on (a log is shared by every daemon autostarted
 * with it: a failure shows only the failing one's lines), readable, the last `max` of them.
 */
export function linesOf(path: string, offset: number, pid: number | undefined, max = 15): string[] {
  let text = '';
  try {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      const buf = Buffer.alloc(Math.max(0, Math.min(size - offset, 1 << 20)));
      readSync(fd, buf, 0, buf.length, Math.max(offset, size - buf.length));
      text = buf.toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return [];
  }
  const mine = text.split('\n').filter((line) => {
    if (line.trim() === '') return false;
    try {
      return (JSON.parse(line) as { pid?: unknown }).pid === pid;
    } catch {
      return false;
    }
  });
  return mine.slice(-max).map(humanLine);
}
