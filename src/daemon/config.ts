// Every dwd setting in one place: flag, environment fallback, default and a one-line doc. main.ts
// logs the resolved values at start so a bug report shows what the daemon was running with.
import { parseArgs } from 'node:util';
import { joinNegativeValues } from '../protocol/argv.js';
import { DwError } from '../protocol/errors.js';
import { absoluteSocket, defaultSocketPath } from '../protocol/paths.js';
import { DEFAULT_MAX_FRAME } from '../protocol/framing.js';
import { parseDuration, parseKeepAlive, parseSize } from '../protocol/units.js';
import { totalmem } from 'node:os';
import { gpuMemoryByIndex } from '../host/nvidia.js';
import { type Device, parseDevices, parseRunners } from './pool-layout.js';

export interface Config {
  socket: string;
  keep_alive_ms: number;
  /** Bytes for all runners together, or a share of each GPU for the models of the runners on it. */
  max_memory: number | { gpu_percent: number } | null;
  growth_warn_bytes: number;
  recycle_above_bytes: number;
  prewarm: boolean;
  allowed_roots: string[] | null;
  plugins: 'auto' | 'on' | 'off';
  runners: number | 'auto';
  devices: Device[] | null;
  replicas: 'auto' | 1;
  parallel: number;
  max_queue: number;
  timeout_ms: number;
  grace_ms: number;
  log_level: string;
  max_frame: number;
  input_store_bytes: number;
  cache_size_bytes: number;
}

interface Setting<K extends keyof Config> {
  flag: string;
  /** A switch: `--flag` alone turns it on; the environment variable takes 1/0/true/false. */
  boolean?: true;
  env: string;
  doc: string;
  default: () => Config[K];
  parse: (raw: string, name: string) => Config[K];
}

function positiveInt(raw: string, name: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new DwError('DW_ERR_USAGE', `${name}: "${raw}" is not a whole number of at least 1`);
  return n;
}

function aboveZero(bytes: number, raw: string, name: string): number {
  if (bytes <= 0) throw new DwError('DW_ERR_USAGE', `${name}: "${raw}" must be more than zero`);
  return bytes;
}

const positiveSize = (raw: string, name: string) => aboveZero(parseSize(raw, name), raw, name);

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** The smallest --max-frame: below it dwd could not send its status, nor take a stop (a 10-byte limit once left only kill). */
const MIN_MAX_FRAME = 4 * 1024;

export const SETTINGS: { [K in keyof Config]: Setting<K> } = {
  socket: {
    flag: 'socket',
    env: 'DW_SOCKET',
    doc: 'Unix socket to listen on (an absolute path)',
    default: () => defaultSocketPath(),
    parse: (raw) => absoluteSocket(raw, '--socket / DW_SOCKET'),
  },
  keep_alive_ms: {
    flag: 'keep-alive',
    env: 'DWD_KEEP_ALIVE',
    doc: 'unload a model idle this long (-1: never, 0: right after its run)',
    default: () => 30 * 60_000,
    parse: parseKeepAlive,
  },
  max_memory: {
    flag: 'max-memory',
    env: 'DWD_MAX_MEMORY',
    doc: 'memory budget for loaded models: bytes, 8G or 50% (of RAM) for all runners together, or 80%gpu (of each GPU, for the models on it); idle models are evicted to fit',
    default: () => null,
    parse: (raw, name) => {
      const pct = /^(\d+(?:\.\d+)?)%(gpu)?$/i.exec(raw.trim());
      if (raw.includes('%') && !(pct && Number(pct[1]) > 0 && Number(pct[1]) <= 100)) {
        throw new DwError(
          'DW_ERR_USAGE',
          `${name}: "${raw}" is not a percentage between 0 and 100, e.g. 50% (of RAM) or 80%gpu (of GPU memory)`,
        );
      }
      if (pct?.[2]) {
        if (gpuMemoryByIndex().size === 0)
          throw new DwError('DW_ERR_USAGE', `${name}: "${raw}" needs a GPU, but nvidia-smi does not answer`);
        return { gpu_percent: Number(pct[1]) };
      }
      return pct ? aboveZero(Math.round((totalmem() * Number(pct[1])) / 100), raw, name) : positiveSize(raw, name);
    },
  },
  growth_warn_bytes: {
    flag: 'growth-warn',
    env: 'DWD_GROWTH_WARN',
    doc: 'warn when a runner grows by more than this across warm runs',
    default: () => 500 * 1024 * 1024,
    parse: parseSize,
  },
  recycle_above_bytes: {
    flag: 'recycle-above',
    env: 'DWD_RECYCLE_ABOVE',
    doc: 'replace an idle runner that holds this much more than its models (or twice their size, if more) after a large run, and load its models again; 0: never',
    default: () => 1024 * 1024 * 1024,
    parse: parseSize,
  },
  prewarm: {
    flag: 'prewarm',
    env: 'DWD_PREWARM',
    boolean: true,
    doc: 'load a model again in the background when its file changes',
    default: () => false,
    parse: (raw, name) => {
      if (!/^(1|0|true|false)$/.test(raw)) throw new DwError('DW_ERR_USAGE', `${name}: "${raw}" is not 1, 0, true or false`);
      return raw === '1' || raw === 'true';
    },
  },
  allowed_roots: {
    flag: 'allowed-roots',
    env: 'DWD_ALLOWED_ROOTS',
    doc: 'colon-separated folders that workflows, models and inputs must lie in',
    default: () => null,
    parse: (raw) => raw.split(':').filter(Boolean),
  },
  plugins: {
    flag: 'plugins',
    env: 'DWD_PLUGINS',
    doc: 'run plugin pipelines ("type": "./x.mjs"): on, off, or auto = on unless --allowed-roots is set (a plugin runs any code)',
    default: () => 'auto',
    parse: (raw, name) => {
      if (!['auto', 'on', 'off'].includes(raw)) throw new DwError('DW_ERR_USAGE', `${name}: "${raw}" is not auto, on or off`);
      return raw as Config['plugins'];
    },
  },
  runners: {
    flag: 'runners',
    env: 'DWD_RUNNERS',
    doc: 'runner processes, each with its own models: a number, or auto = one per GPU, else 2 on a host with 2 cores or more',
    default: () => 'auto',
    parse: parseRunners,
  },
  devices: {
    flag: 'devices',
    env: 'DWD_DEVICES',
    doc: 'devices the runners are dealt to in turn: cpu, or cuda:0,cuda:1,…; auto = every GPU nvidia-smi reports, else cpu',
    default: () => null,
    parse: parseDevices,
  },
  replicas: {
    flag: 'replicas',
    env: 'DWD_REPLICAS',
    doc: 'auto: a model whose runs wait longer than its load takes is loaded in another runner with room too; 1: one copy of each model',
    default: () => 1,
    parse: (raw, name) => {
      if (raw !== 'auto' && raw !== '1') throw new DwError('DW_ERR_USAGE', `${name}: "${raw}" is not auto or 1`);
      return raw === 'auto' ? 'auto' : 1;
    },
  },
  parallel: {
    flag: 'parallel',
    env: 'DWD_PARALLEL',
    doc: 'runs of different models at once on each runner',
    default: () => 2,
    parse: positiveInt,
  },
  max_queue: {
    flag: 'max-queue',
    env: 'DWD_MAX_QUEUE',
    doc: 'runs that may wait; past it a run is refused with DW_ERR_BUSY',
    default: () => 64,
    parse: positiveInt,
  },
  timeout_ms: {
    flag: 'timeout',
    env: 'DWD_TIMEOUT',
    doc: 'default deadline of a run (dw run --timeout overrides it per run)',
    default: () => 300_000,
    parse: parseDuration,
  },
  grace_ms: {
    flag: 'grace',
    env: 'DWD_GRACE',
    doc: 'how long shutdown waits for runs in flight before cancelling them',
    default: () => 10_000,
    parse: parseDuration,
  },
  input_store_bytes: {
    flag: 'input-store',
    env: 'DWD_INPUT_STORE',
    doc: "room for files that clients send by content (DW_HOST=ssh://, another user's dw), least recently used out first; also the most one run may send",
    default: () => 2 * 1024 * 1024 * 1024,
    parse: positiveSize,
  },
  cache_size_bytes: {
    flag: 'cache-size',
    env: 'DWD_CACHE_SIZE',
    doc: 'room for step results kept so that unchanged steps are not run again, least recently used out first; 0: no step cache',
    default: () => 1024 * 1024 * 1024,
    parse: parseSize,
  },
  log_level: {
    flag: 'log-level',
    env: 'DWD_LOG_LEVEL',
    doc: `log level: ${LEVELS.join(', ')}`,
    default: () => 'info',
    parse: (raw, name) => {
      if (!LEVELS.includes(raw)) throw new DwError('DW_ERR_USAGE', `${name}: "${raw}" is not one of ${LEVELS.join(', ')}`);
      return raw;
    },
  },
  max_frame: {
    flag: 'max-frame',
    env: 'DWD_MAX_FRAME',
    doc: `largest protocol frame accepted or sent (at least ${MIN_MAX_FRAME / 1024}K)`,
    default: () => DEFAULT_MAX_FRAME,
    parse: (raw, name) => {
      const bytes = parseSize(raw, name);
      if (bytes < MIN_MAX_FRAME) throw new DwError('DW_ERR_USAGE', `${name}: ${raw} is too small; the least is ${MIN_MAX_FRAME / 1024}K`);
      return bytes;
    },
  },
};

export function usage(): string {
  const keys = Object.keys(SETTINGS) as (keyof Config)[];
  const settings = keys.map((k) => SETTINGS[k] as Setting<keyof Config>);
  const flags = settings.map((s) => `--${s.boolean ? s.flag : `${s.flag} V`}`);
  const width = Math.max(...flags.map((f) => f.length));
  const envWidth = Math.max(...settings.map((s) => s.env.length));
  const shown = (key: string, v: unknown) =>
    v === null
      ? key === 'devices'
        ? 'auto'
        : 'none'
      : typeof v !== 'number'
        ? String(v)
        : key.endsWith('_ms')
          ? `${v / 1000}s`
          : /frame|bytes|memory/.test(key)
            ? `${v / 1048576}M`
            : String(v);
  const rows = settings.map(
    (s, i) => `  ${flags[i]!.padEnd(width)}  ${s.env.padEnd(envWidth)}  ${s.doc} (default: ${shown(keys[i]!, s.default())})`,
  );
  return [
    'Usage: dwd [options]',
    '',
    'The dw daemon: keeps ONNX pipelines loaded and runs workflows for the dw CLI.',
    'Runs in the foreground and logs JSON lines to stdout (use systemd, or `dwd &`).',
    '',
    'Options (flag, environment fallback, meaning):',
    ...rows,
    `  ${'--help'.padEnd(width)}  ${''.padEnd(envWidth)}  show this help`,
    `  ${'--version'.padEnd(width)}  ${''.padEnd(envWidth)}  print the version`,
  ].join('\n');
}

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): Config | 'help' | 'version' {
  const options = Object.fromEntries(
    Object.values(SETTINGS).map((s) => [s.flag, { type: s.boolean ? ('boolean' as const) : ('string' as const) }]),
  );
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: joinNegativeValues(argv, (name) => options[name]?.type === 'string'),
      options: { ...options, help: { type: 'boolean' }, version: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new DwError('DW_ERR_USAGE', `${(err as Error).message}; see dwd --help`);
  }
  if (values.help) return 'help';
  if (values.version) return 'version';
  const config = {} as Record<keyof Config, unknown>;
  for (const [key, s] of Object.entries(SETTINGS) as [keyof Config, Setting<keyof Config>][]) {
    const flag = values[s.flag] === true ? 'true' : values[s.flag];
    const raw = typeof flag === 'string' ? flag : env[s.env];
    // An empty variable is an unset one (as shells and EnvironmentFile= write it); an empty flag is a slip.
    if (flag === '') throw new DwError('DW_ERR_USAGE', `--${s.flag} is empty; give a value (dwd --help)`);
    config[key] = raw === undefined || raw === '' ? s.default() : s.parse(raw, typeof flag === 'string' ? `--${s.flag}` : s.env);
  }
  return config as Config;
}
