#!/usr/bin/env node
// dwd: the daemon. Foreground process; systemd or `dwd &` (or dw's autostart) runs it.
import { closeSync, writeSync } from 'node:fs';
import { DwError, exitCodeFor } from '../protocol/errors.js';
import { PACKAGE_VERSION, PROTOCOL_VERSION } from '../protocol/version.js';
import { loadConfig, usage } from './config.js';
import { Daemon } from './daemon.js';
import { bindSocket } from './listen.js';
import { createLogger } from './log.js';

/** dw's autostart hands us a pipe on DWD_READY_FD and waits for one line on it: an event, not a poll. */
function signalReady(): void {
  const fd = Number(process.env.DWD_READY_FD);
  if (!Number.isInteger(fd) || fd < 3) return;
  try {
    writeSync(fd, 'ready\n');
    closeSync(fd);
  } catch {
    // The starter gave up waiting; the daemon is up all the same.
  }
}

async function main(): Promise<void> {
  const config = loadConfig(process.argv.slice(2));
  if (config === 'help') return void console.log(usage());
  if (config === 'version') return void console.log(PACKAGE_VERSION);
  const log = createLogger(config.log_level);
  const bound = await bindSocket(config.socket);
  const daemon = new Daemon(config, log, bound, process.env.DWD_AUTOSTARTED === '1');
  const runnerUp = daemon.start();
  log.info({ version: PACKAGE_VERSION, protocol: PROTOCOL_VERSION, socket: bound.socket, socket_activated: bound.activated, settings: config, node: process.version }, 'dwd listening');

  const stop = (reason: string) => daemon.shutdown(reason).then(() => process.exit(0));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('uncaughtException', (err) => {
    // State may be inconsistent after this; shut down cleanly and let systemd or autostart bring us back.
    log.fatal({ err }, 'uncaught exception');
    void daemon.shutdown('uncaught exception').then(() => process.exit(1));
  });
  // Ready once the runner is (or failed to start, which the supervisor retries): the first run
  // after an autostart then does not wait for a process start.
  await runnerUp;
  signalReady();
}

main().catch((err: unknown) => {
  const e = err instanceof DwError ? err : new DwError('DW_ERR_INTERNAL', (err as Error)?.stack ?? String(err));
  process.stderr.write(`dwd: ${e.message}\n`);
  process.exit(exitCodeFor(e.code));
});
