import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON lines on stdout: systemd's journal or the autostart log file picks them up from there. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}
