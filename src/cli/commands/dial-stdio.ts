import { createConnection } from 'node:net';
import { EXIT } from '../../protocol/errors.js';
import { connect } from '../autostart.js';
import type { Command } from '../command.js';

export const dialStdio: Command = {
  name: 'dial-stdio',
  summary: 'carry the protocol between stdin/stdout and the local dwd (what DW_HOST=ssh:// runs on the far side)',
  help: `Usage: dw dial-stdio

Connects to this user's dwd (starting it if needed, as dw run would) and copies bytes
between it and stdin/stdout until both directions have ended; each direction is closed
on its own. A dw elsewhere with DW_HOST=ssh://user@thishost runs
\`ssh thishost -- dw dial-stdio\` and speaks its usual protocol through it, as docker does
with \`docker system dial-stdio\`. Nothing is printed on stdout but the daemon's bytes;
what dw says (a daemon started) goes to stderr.

Options:
      --no-start   do not start a daemon when none runs (for status, stop, memory, clear)
  -h, --help       show this help`,
  positionals: 0,
  options: { 'no-start': { type: 'boolean' } },
  async run(values) {
    // This is the far side: a DW_HOST set here (a .bashrc) must not send it on to yet another host.
    delete process.env.DW_HOST;
    // The usual way to a daemon (autostart, version check), then a raw connection of our own.
    const { client, socket } = await connect({ start: values['no-start'] !== true });
    client.close();
    const conn = createConnection({ path: socket, allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      conn.once('connect', () => resolve());
      conn.once('error', reject);
    });
    process.stdin.pipe(conn); // stdin's end half-closes the socket: the daemon still answers
    conn.pipe(process.stdout, { end: false });
    // Once the daemon's side has ended there is nothing more to carry: what was read is written
    // (stdout to a pipe is synchronous here), and exiting closes stdout, which ssh passes on as EOF.
    await new Promise<void>((resolve) => {
      // 'end': the daemon will send nothing more (it stopped, or dropped this client), even while
      // our half is still open; nothing of the protocol goes on from there.
      conn.on('end', () => resolve());
      conn.on('close', () => resolve());
      process.stdout.on('error', () => conn.destroy());
    });
    return process.exit(EXIT.OK);
  },
};
