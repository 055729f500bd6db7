// DW_HOST and --host: what each form means, and every malformed one refused with how to write it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostSetting } from '../src/cli/host.js';
import { shellWord, sshArgs } from '../src/cli/ssh.js';
import { DwError } from '../src/protocol/errors.js';

test('ssh:// and unix:// URLs parse into what ssh and the socket code need', () => {
  assert.equal(hostSetting({}), null);
  assert.equal(hostSetting({ DW_HOST: '  ' }), null);
  assert.deepEqual(hostSetting({ DW_HOST: 'unix:///run/dwd/dwd.sock' }), { kind: 'unix', path: '/run/dwd/dwd.sock' });
  assert.deepEqual(hostSetting({ DW_HOST: 'ssh://gpu-box' }), { kind: 'ssh', url: 'ssh://gpu-box', target: 'gpu-box', port: null });
  assert.deepEqual(hostSetting({ DW_HOST: 'ssh://me@gpu-box:2222' }), {
    kind: 'ssh',
    url: 'ssh://me@gpu-box:2222',
    target: 'me@gpu-box',
    port: 2222,
  });
  assert.deepEqual(hostSetting({ DW_HOST: 'ssh://me@[::1]:22' })?.kind === 'ssh' && hostSetting({ DW_HOST: 'ssh://me@[::1]:22' }), {
    kind: 'ssh',
    url: 'ssh://me@[::1]:22',
    target: 'me@::1',
    port: 22,
  });
});

test('malformed hosts are usage errors that say how to write one', () => {
  for (const bad of [
    'gpu-box',
    'tcp://gpu-box:1234',
    'unix://relative.sock',
    'ssh://',
    'ssh://me:secret@gpu-box',
    'ssh://gpu-box/path',
    'ssh://-oProxyCommand=x',
    'ssh://-x@gpu-box',
    'ssh://gpu-box:99999',
  ]) {
    assert.throws(
      () => hostSetting({ DW_HOST: bad }),
      (e: unknown) => e instanceof DwError && e.code === 'DW_ERR_USAGE' && /ssh:\/\/\[user@\]host\[:port\]/.test(e.message),
      bad,
    );
  }
});

test('ssh is run without a password prompt, the remote command after "--", and a remote word quoted for its shell', () => {
  const host = hostSetting({ DW_HOST: 'ssh://me@gpu-box:2222' })!;
  assert.equal(host.kind, 'ssh');
  if (host.kind !== 'ssh') return;
  const args = sshArgs(host, 'dw dial-stdio', {}, { DW_SSH_MULTIPLEX: '0' });
  assert.deepEqual(args, ['-T', '-o', 'BatchMode=yes', '-p', '2222', 'me@gpu-box', '--', 'dw dial-stdio']);
  assert.equal(shellWord('logs'), 'logs');
  assert.equal(shellWord("it's; rm -rf /"), `'it'\\''s; rm -rf /'`);
});
