import { createReadStream, statSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { DwError, EXIT } from '../../protocol/errors.js';
import { defaultLogPath } from '../../protocol/paths.js';
import { connect } from '../autostart.js';
import type { Command } from '../command.js';
import { humanLine } from '../log-lines.js';
import { hostSetting } from '../host.js';
import { FOLLOW_UNTIL_EOF } from '../settings.js';

function readFrom(path: string, start: number): Promise<{ text: string; end: number }> {
  return new Promise((resolve, reject) => {
    let text = '';
    createReadStream(path, { start, encoding: 'utf8' })
      .on('data', (d) => (text += d))
      .on('error', reject)
      .on('end', () => resolve({ text, end: start + Buffer.byteLength(text) }));
  });
}

/**
 * Where the daemon that answers writes its log, and whether it runs as this user. 'silent': one is
 * there but answered nothing within 1 s (frozen, busy). null: none to ask (absent, a stale socket,
 * another version). Without an answer the log is where an autostart from here puts it.
 */
async function runningLog(): Promise<{ pid: number; mine: boolean; file: string | null; journal: boolean } | 'silent' | null> {
  try {
    const { client } = await connect({ start: false, timeoutMs: 1000 });
    try {
      const s = await client.request('status', {}, undefined, { deadlineMs: 1000 });
      return s.log && { pid: s.pid, mine: client.hello.uid === process.getuid?.(), file: s.log.file, journal: s.log.journal };
    } finally {
      client.close();
    }
  } catch (err) {
    const e = err as DwError;
    return e.code === 'DW_ERR_DAEMON_UNREACHABLE' && !/nothing listens there/.test(e.message) ? 'silent' : null;
  }
}

/** How Linux names the path of a file removed while open (/proc/PID/fd/N). */
const DELETED = ' (deleted)';

export const logs: Command = {
  name: 'logs',
  summary: "show the running dwd's log (or the last one dw autostarted here)",
  help: `Usage: dw logs [-n N] [-f] [--json]

Shows the last N lines (default 50) of the running dwd's log, one line per event with its
time, level and fields. An autostarted dwd writes ${'$'}XDG_STATE_HOME/dw/dwd.log (default
~/.local/state/dw/dwd.log) of the dw that started it; with none running, that file of yours is
shown. A dwd run by systemd logs to the journal instead, and dw says how to read it:
journalctl --user -u dwd (or journalctl -u dwd for the system service).

Options:
  -n, --lines N   how many lines from the end (default 50)
  -f, --follow    keep printing lines as they are written (Ctrl-C to stop)
      --json      print the raw JSON lines
  -h, --help      show this help`,
  positionals: 0,
  options: { lines: { type: 'string', short: 'n' }, follow: { type: 'boolean', short: 'f' }, json: { type: 'boolean' } },
  async run(values) {
    const host = hostSetting();
    // The log is a file on the daemon's host: the dw there shows it.
    if (host?.kind === 'ssh') {
      const args = [
        'logs',
        ...(values.lines !== undefined ? ['-n', String(values.lines)] : []),
        ...(values.follow ? ['-f'] : []),
        ...(values.json ? ['--json'] : []),
      ];
      return (await import('../ssh.js')).runRemote(host, args, { follow: values.follow === true });
    }
    const n = values.lines === undefined ? 50 : Number(values.lines);
    if (!Number.isInteger(n) || n < 0) throw new DwError('DW_ERR_USAGE', `--lines: "${values.lines}" is not a whole number`);
    const found = await runningLog();
    const running = typeof found === 'object' ? found : null;
    const removed = running?.file?.endsWith(DELETED) ? running.file.slice(0, -DELETED.length) : null;
    if (running && (running.file === null || removed)) {
      const who = `dw: dwd (pid ${running.pid})`;
      if (running.journal)
        process.stderr.write(
          `${who} logs to systemd's journal: journalctl ${running.mine ? '--user ' : ''}-u dwd${values.follow ? ' -f' : ''}\n`,
        );
      else if (removed)
        process.stderr.write(
          `${who} writes its log to ${removed}, which was removed; \`dw stop\`, and the next run starts a daemon with a new log\n`,
        );
      else process.stderr.write(`${who} writes its log to its standard output, which is no file (a terminal? a pipe?)\n`);
      return EXIT.OK;
    }
    // The running daemon's own file: one started with other XDG settings (a cron job's) writes elsewhere.
    const path = running?.file ?? defaultLogPath();
    if (found === 'silent')
      process.stderr.write(`dw: dwd did not answer within 1 s; showing ${path}, where this dw would start one's log\n`);
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) {
      process.stderr.write(`dw: no log at ${path}: no daemon was autostarted here (a dwd under systemd logs to the journal)\n`);
      return EXIT.OK;
    }
    // Read, or followed, only as a regular file: a named pipe there would hold dw for good.
    if (!st.isFile()) throw new DwError('DW_ERR_FILE_NOT_FOUND', `the log ${path} is not a regular file`, { path });
    const show = (lines: string[]) => {
      for (const l of lines) if (l !== '') process.stdout.write((values.json ? l : humanLine(l)) + '\n');
    };
    const { text, end } = await readFrom(path, 0).catch((err: NodeJS.ErrnoException) => {
      // The log of a daemon of another user (a system service writing a file) may be closed to us.
      throw new DwError('DW_ERR_FILE_NOT_FOUND', `cannot read the log ${path}: ${err.code ?? err.message}`, { path });
    });
    // Caught before the first line shows: a Ctrl-C right after it stops the follow, not dw.
    let stop = () => {};
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    if (values.follow) {
      process.once('SIGINT', stop);
      // Run through ssh by a dw elsewhere (ssh.ts runRemote): that dw closes our input to stop us.
      if (process.env[FOLLOW_UNTIL_EOF] === '1') process.stdin.once('end', stop).resume();
    }
    if (text === '') process.stderr.write(`dw: the log ${path} is empty\n`);
    // slice(-0) would be every line: -n 0 shows none (with -f: only what comes next).
    show(n === 0 ? [] : text.split('\n').filter(Boolean).slice(-n));
    if (!values.follow) return EXIT.OK;
    let pos = end;
    let ino = st.ino;
    let partial = '';
    let reading = Promise.resolve();
    const readNew = async () => {
      const st = statSync(path, { throwIfNoEntry: false });
      if (!st) return; // rotated away: the next one appears soon
      // A new file at the path (rotated: moved away and begun again), or one cut short: from its start.
      if (st.ino !== ino || st.size < pos) {
        ino = st.ino;
        pos = 0;
        partial = '';
      }
      try {
        const chunk = await readFrom(path, pos);
        pos = chunk.end;
        const lines = (partial + chunk.text).split('\n');
        partial = lines.pop() ?? '';
        show(lines);
      } catch {
        // removed between the stat and the read: the next event finds the new one
      }
    };
    // The folder, not the file: a watch on the file follows its inode away when the log is rotated.
    const watcher = watch(dirname(path));
    watcher.on('change', (_event, name) => {
      if (name !== null && name !== basename(path)) return;
      reading = reading.then(readNew); // one read at a time, in order
    });
    await stopped;
    watcher.close();
    return EXIT.OK;
  },
};
