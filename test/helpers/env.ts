// Real processes for integration tests: a dwd on a socket in a temp dir and the built dw binary.
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before } from 'node:test';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const DW = join(ROOT, 'dist', 'cli', 'dw.cjs');
export const DWD = join(ROOT, 'dist', 'daemon', 'main.js');
export const OCR_WORKFLOW = join(ROOT, 'workflows', 'ocr.json');
export const MODELS = join(ROOT, 'node_modules', '@gutenye', 'ocr-models', 'assets');

if (!existsSync(DW) || !existsSync(DWD)) throw new Error('dist/ is missing: run `npm run build` (npm test does it first)');

export interface Sandbox {
  dir: string;
  socket: string;
  env: NodeJS.ProcessEnv;
  cleanup(): void;
}

/**
 * A temp dir with a short socket path and a private state dir (autostart logs land there). Its
 * daemons have `runners` runners: one unless a test is about the pool, so that a test that kills,
 * stops or measures "the runner" (status.runners[0]) knows which process holds its run.
 */
export function sandbox(runners = 1): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), 'dwt-'));
  const socket = join(dir, 'run', 'dwd.sock');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DW_SOCKET: socket,
    XDG_STATE_HOME: join(dir, 'state'),
    XDG_CACHE_HOME: join(dir, 'cache'),
    DW_AUTOSTART: '0',
    DWD_RUNNERS: String(runners),
    // Off unless a test is about it: the others test runs that run (a step served from the cache
    // loads no model and cannot be interrupted); test/integration/cache.test.ts turns it on.
    DWD_CACHE_SIZE: '0',
  };
  delete env.NODE_OPTIONS;
  return { dir, socket, env, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Daemon {
  proc: ChildProcess;
  log: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

/** Starts dwd in the foreground and resolves when it reports ready (on the DWD_READY_FD pipe). */
export function startDaemon(sb: Sandbox, args: string[] = [], extraEnv: NodeJS.ProcessEnv = {}, entry = DWD): Promise<Daemon> {
  const proc = spawn(process.execPath, [entry, ...args], {
    env: { ...sb.env, ...extraEnv, DWD_READY_FD: '3' },
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    proc.once('exit', (code, signal) => r({ code, signal })),
  );
  const daemon: Daemon = {
    proc,
    log: () => out,
    exited,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
  return new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`dwd did not start:\n${out}`)), 30_000);
    // dwd writes `waiting …` while an older daemon stops, then `ready` or `error {code, message}`.
    let said = '';
    proc.stdio[3]!.on('data', (chunk) => {
      said += chunk;
      const error = /^error (.*)$/m.exec(said);
      if (error) {
        clearTimeout(timer);
        reject(new Error(`dwd could not start: ${JSON.parse(error[1]!).message}\n${out}`));
      } else if (/^ready$/m.test(said)) {
        clearTimeout(timer);
        resolveReady(daemon);
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`dwd exited with ${code} at start:\n${out}`));
    });
  });
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Running {
  proc: ChildProcess;
  /** Resolves when stderr so far matches (progress lines arrive there). */
  stderrMatches(re: RegExp, ms?: number): Promise<void>;
  done: Promise<Ran>;
}

/** Starts the real dw binary; the caller decides when to wait or kill. */
/** `group`: in a process group of its own, so a test can signal it and its children as a terminal's Ctrl-C does. */
export function spawnDw(sb: Sandbox, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; group?: boolean } = {}): Running {
  const proc = spawn(process.execPath, [DW, ...args], {
    env: { ...sb.env, ...opts.env },
    cwd: opts.cwd ?? sb.dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.group === true,
  });
  let stdout = '';
  let stderr = '';
  const watchers: Array<() => void> = [];
  proc.stdout!.on('data', (d) => (stdout += d));
  proc.stderr!.on('data', (d) => {
    stderr += d;
    watchers.forEach((w) => w());
  });
  const done = new Promise<Ran>((res) => proc.on('close', (code) => res({ code, stdout, stderr })));
  return {
    proc,
    done,
    stderrMatches: (re, ms = 30_000) =>
      new Promise((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`stderr never matched ${re}:\n${stderr}`)), ms);
        const check = () => re.test(stderr) && (clearTimeout(timer), res());
        watchers.push(check);
        check();
        void done.then(() => {
          clearTimeout(timer);
          if (!re.test(stderr)) rej(new Error(`dw exited before stderr matched ${re}:\n${stderr}`));
        });
      }),
  };
}

/** Runs the real dw binary to completion. */
export function dw(sb: Sandbox, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Ran> {
  return spawnDw(sb, args, opts).done;
}

/** dw run --json, parsed. */
export async function dwJson(
  sb: Sandbox,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<{ ran: Ran; json: any }> {
  const ran = await dw(sb, [...args, '--json'], opts);
  let json: unknown;
  try {
    json = JSON.parse(ran.stdout);
  } catch {
    throw new Error(`dw printed no JSON (exit ${ran.code}):\nstdout: ${ran.stdout}\nstderr: ${ran.stderr}`);
  }
  return { ran, json };
}

export { pidAlive as alive } from '../../src/protocol/pids.js';

export const SAMPLE = join(ROOT, 'workflows', 'samples', 'receipt.png');

/** The receipt sample tiled `copies` times: a page with many boxes, so a run stays in progress long enough to interrupt. */
export async function tallImage(sb: Sandbox, copies: number): Promise<string> {
  const { default: sharp } = await import('sharp');
  const meta = await sharp(SAMPLE).metadata();
  const out = join(sb.dir, `tall${copies}.png`);
  await sharp({ create: { width: meta.width!, height: meta.height! * copies, channels: 3, background: '#ffffff' } })
    .composite(Array.from({ length: copies }, (_, i) => ({ input: SAMPLE, top: i * meta.height!, left: 0 })))
    .png()
    .toFile(out);
  return out;
}

/** Polls `probe` until it returns something truthy (state that changes in another process, e.g. after a file edit). */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * One daemon in one sandbox for a whole test file: the sandbox at once, the daemon started before
 * the file's tests (later `before` hooks see it running) and both gone after them.
 */
export function fileDaemon(args: string[] = []): { sb: Sandbox; daemon: () => Daemon; started: () => Promise<Daemon> } {
  const sb = sandbox();
  let daemon: Daemon | undefined;
  let starting: Promise<Daemon> | undefined;
  // A file's own `before` hook awaits started(): it must not count on running after this one.
  const started = () => (starting ??= startDaemon(sb, args).then((d) => (daemon = d)));
  before(started);
  after(async () => {
    await daemon?.stop();
    sb.cleanup();
  });
  return { sb, daemon: () => daemon!, started };
}

/** A daemon (of `runners` runners) in a fresh sandbox for the length of `fn`; stopped and cleaned up however `fn` ends. */
export async function withDaemon<T>(args: string[], fn: (sb: Sandbox, d: Daemon) => Promise<T>, runners = 1): Promise<T> {
  const sb = sandbox(runners);
  const d = await startDaemon(sb, args);
  try {
    return await fn(sb, d);
  } finally {
    await d.stop();
    sb.cleanup();
  }
}

/**
 * A one-step workflow around a plugin pipeline written here, in `dir`: `body` is the body of its
 * `async run(args, ctx)`. Returns the workflow's path.
 */
export function pluginWorkflow(
  dir: string,
  name: string,
  body: string,
  opts: { step?: string; roles?: string; models?: Record<string, string>; variables?: object; arguments?: object; result?: object } = {},
): string {
  writeFileSync(
    join(dir, `${name}.mjs`),
    `export default { ${opts.roles ? `roles: ${opts.roles}, ` : ''}async run(args, ctx) { ${body} } };\n`,
  );
  const wf = join(dir, `${name}.json`);
  const pipeline = { type: `./${name}.mjs`, models: opts.models ?? {}, ...(opts.arguments ? { arguments: opts.arguments } : {}) };
  const step = { name: opts.step ?? 'x', pipeline, ...(opts.result ? { result: opts.result } : {}) };
  writeFileSync(wf, JSON.stringify({ id: name, ...(opts.variables ? { variables: opts.variables } : {}), steps: [step] }));
  return wf;
}

/** A workflow whose one step ("sleep") takes `seconds`, yielding and reporting progress in ticks all along. */
export const slowWorkflow = (dir: string, seconds: number): string =>
  pluginWorkflow(
    dir,
    'slow',
    `for (let i = 0; i < ${seconds * 20}; i++) { ctx.signal.throwIfAborted(); ctx.progress(i, ${seconds * 20}, 'ticks'); await new Promise((r) => setTimeout(r, 50)); }
    return 'slept';`,
    { step: 'sleep' },
  );
