#!/usr/bin/env node
// dwd: the daemon. Foreground process; systemd or `dwd &` (or dw's autostart) runs it.
import { closeSync, fstatSync, writeSync } from 'node:fs';
import { DwError, exitCodeFor, toErrorPayload } from '../protocol/errors.js';
import { PACKAGE_VERSION, PROTOCOL_VERSION } from '../protocol/version.js';
import { loadConfig, usage } from './config.js';
import { Daemon } from './daemon.js';
import { bindSocket } from './listen.js';
import { createLogger, type Logger } from './log.js';
import { LogSink } from './log-sink.js';
import { OWN_ROOT } from '../workflow/model-paths.js';

/**
 * dw's autostart hands us a pipe on DWD_READY_FD and reads lines from it: `waiting {pid}` while an
 * older daemon finishes stopping, then `ready` or `error {code, message}`: an event, not a poll,
 * and the reason for a failed start reaches dw even when the log cannot be written.
 */
function readyPipe(): { tell: (line: string) => void; close: () => void } {
  let fd: number | null = Number(process.env.DWD_READY_FD);
  if (!Number.isInteger(fd) || fd < 3) fd = null;
  const tell = (line: string) => {
    if (fd === null) return;
    try {
      writeSync(fd, `${line}\n`);
    } catch {
      // The starter gave up waiting; the daemon goes on all the same.
    }
  };
  return {
    tell,
    close: () => {
      if (fd === null) return;
      try {
        closeSync(fd);
      } catch {}
      fd = null;
    },
  };
}

/** stdout and stderr are one file (an autostarted dwd logs both to dwd.log): say things once, as JSON. */
function sameOutput(): boolean {
  try {
    const [a, b] = [fstatSync(1), fstatSync(2)];
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  }
}

const ready = readyPipe();
const sink = new LogSink(1, (why) => {
  if (sameOutput()) return;
  try {
    writeSync(2, `dwd: cannot write its log (${why}); log lines are dropped and counted (dw status)\n`);
  } catch {}
});

/** A failed start: a JSON record in the log, plain text on stderr (unless it is the log), and the error on dw's ready pipe. */
function startFailed(err: unknown, log: Logger): never {
  const e = err instanceof DwError ? err : new DwError('DW_ERR_INTERNAL', (err as Error)?.stack ?? String(err));
  log.fatal({ code: e.code, err: e.message }, 'dwd could not start');
  if (!sameOutput()) process.stderr.write(`dwd: ${e.message}\n`);
  ready.tell(`error ${JSON.stringify(toErrorPayload(e))}`);
  sink.flushSync();
  process.exit(exitCodeFor(e.code));
}

async function main(): Promise<void> {
  let log = createLogger('info', sink);
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.argv.slice(2));
  } catch (err) {
    startFailed(err, log);
  }
  if (config === 'help') return void console.log(usage());
  if (config === 'version') return void console.log(PACKAGE_VERSION);
  log = createLogger(config.log_level, sink);
  let daemon: Daemon;
  try {
    const bound = await bindSocket(config.socket, process.env, {
      waiting: (pid, waitMs) => {
        log.info(
          { previous_pid: pid, wait_ms: waitMs },
          'waiting for the dwd that holds the pid file but does not answer (stopping, or still starting) to exit',
        );
        ready.tell(`waiting ${JSON.stringify({ pid, wait_ms: waitMs })}`);
      },
    });
    daemon = new Daemon(config, log, bound, process.env.DWD_AUTOSTARTED === '1', sink);
  } catch (err) {
    startFailed(err, log);
  }
  // Every path in a request comes with its client's cwd, and the options' paths are resolved by now.
  // A daemon that stayed in the folder it was started from (dw's, when autostarted) would keep that
  // folder busy for as long as it lives: a USB stick that cannot be unmounted, a mount that stays.
  // Its own install folder, not /: a runner started from source (--import tsx) finds tsx from there.
  process.chdir(OWN_ROOT);
  const runnerUp = daemon.start();
  log.info(
    {
      version: PACKAGE_VERSION,
      protocol: PROTOCOL_VERSION,
      socket: daemon.socket,
      socket_activated: daemon.activated,
      settings: config,
      node: process.version,
    },
    'dwd listening',
  );

  let exitCode = 0;
  void daemon.stopped.then(async () => {
    await sink.drain();
    process.exit(exitCode);
  });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // A second signal is someone who will not wait for the grace period: end now, runner included.
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      daemon.abandon();
      sink.flushSync();
      process.exit(1);
    }
    void daemon.shutdown(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('uncaughtException', (err) => {
    // State may be inconsistent after this; shut down cleanly and let systemd or autostart bring us back.
    log.fatal({ err }, 'uncaught exception');
    exitCode = 1;
    void daemon.shutdown('uncaught exception');
  });
  // Ready once the runner is (or failed to start, which the supervisor retries): the first run
  // after an autostart then does not wait for a process start.
  await runnerUp;
  ready.tell('ready');
  ready.close();
}

void main();
