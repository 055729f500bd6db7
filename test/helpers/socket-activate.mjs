// Starts dwd the way systemd's socket activation does: bind and listen on the socket first, hand
// it over as fd 3 with LISTEN_FDS=1 and LISTEN_PID set to the daemon's own pid, then get out of the
// way. This process exits without closing the socket (closing would unlink it), so only dwd holds it.
// Usage: node socket-activate.mjs SOCKET DWD_MAIN LOGFILE   → prints the daemon's pid
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { createServer } from 'node:net';

const [socket, dwd, logfile] = process.argv.slice(2);
const server = createServer();
server.listen(socket, () => {
  const log = openSync(logfile, 'a');
  // sh's $$ is the pid that exec keeps: the one LISTEN_PID must name.
  const child = spawn('/bin/sh', ['-c', 'LISTEN_PID=$$ exec "$0" "$@"', process.execPath, dwd], {
    env: { ...process.env, LISTEN_FDS: '1' },
    stdio: ['ignore', log, log, server._handle.fd],
    detached: true,
  });
  child.unref();
  process.stdout.write(`${child.pid}\n`);
  process.exit(0);
});
