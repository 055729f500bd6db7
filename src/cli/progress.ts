// Shows a run's events on stderr: one live line on a terminal, plain lines otherwise (logs, CI,
// pipes), so stdout stays clean for results.
import type { RunEvent } from '../protocol/messages.js';

export interface Progress {
  event(e: RunEvent): void;
  note(text: string): void;
  done(): void;
}

const basename = (p: string) => p.slice(p.lastIndexOf('/') + 1);

/** The text of an event, or null for events not worth a line. */
function describe(e: RunEvent): string | null {
  switch (e.kind) {
    case 'queued':
      return `queued: position ${e.position}`;
    case 'started':
    case 'alive':
      return null;
    case 'step':
      if (e.state === 'start') return `${e.step}: started`;
      return e.cache === 'hit' ? `${e.step}: cached (saved ${e.saved_ms ?? 0} ms)` : `${e.step}: done in ${e.ms} ms`;
    case 'cache':
      return e.status === 'hit'
        ? `${e.step}: ${e.role} already loaded (${basename(e.path)}, ${e.provider})`
        : e.status === 'loaded'
          ? `${e.step}: loaded ${e.role} (${basename(e.path)}) on ${e.provider} in ${e.load_ms} ms`
          : `${e.step}: ${e.role} reloaded: ${e.reason ?? 'file changed'}`;
    case 'progress':
      return `${e.step}: ${e.done}/${e.total} ${e.unit}`;
    case 'log':
      return `${e.level}: ${e.message}`;
    case 'retry':
      return `${e.reason}; running the run again on a fresh runner`;
    case 'output':
    case 'need':
      return null; // written or answered by the run command, not shown
  }
}

export function createProgress(stream: NodeJS.WriteStream, quiet: boolean): Progress {
  if (quiet) return { event: () => {}, note: () => {}, done: () => {} };
  if (!stream.isTTY) {
    // Plain lines: progress is thinned to quarters so a log is not flooded by a long step.
    const lastQuarter = new Map<string, number>();
    // dwd tells every waiting run its place whenever the queue changes: a place already shown is not repeated.
    let lastPlace = 0;
    return {
      event(e) {
        if (e.kind === 'queued') {
          if (e.position === lastPlace) return;
          lastPlace = e.position;
        }
        if (e.kind === 'progress') {
          const q = e.total > 0 ? Math.floor((4 * e.done) / e.total) : 0;
          if (lastQuarter.get(e.step) === q) return;
          lastQuarter.set(e.step, q);
        }
        const line = describe(e);
        if (line) stream.write(`dw: ${line}\n`);
      },
      note: (text) => stream.write(`${text}\n`),
      done: () => {},
    };
  }
  let shown = false;
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
  let frame = 0;
  const clear = () => shown && stream.write('\r\x1b[2K');
  return {
    event(e) {
      const line = describe(e);
      if (!line) return;
      // Warnings and loads stay on screen; the rest replaces itself.
      if ((e.kind === 'log' && e.level === 'warn') || e.kind === 'retry' || (e.kind === 'cache' && e.status !== 'hit')) {
        clear();
        stream.write(`${line}\n`);
        shown = false;
        return;
      }
      const width = Math.max(20, (stream.columns ?? 80) - 3);
      stream.write(`\r\x1b[2K\x1b[36m${frames[frame++ % frames.length]}\x1b[0m ${line.slice(0, width)}`);
      shown = true;
    },
    note(text) {
      clear();
      stream.write(`${text}\n`);
      shown = false;
    },
    done() {
      clear();
      shown = false;
    },
  };
}
