import { pino, type Logger } from 'pino';
import type { LogSink } from './log-sink.js';

export type { Logger };

/** JSON lines on stdout (through `sink`): systemd's journal or the autostart log file picks them up from there. */
export function createLogger(level: string, sink: LogSink): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, sink);
}
