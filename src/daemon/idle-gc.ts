// After relaying a large result (tens of megabytes of JSON), the daemon's heap holds it as garbage
// until V8 decides to collect, which an idle daemon may not do for a long time: its RSS stayed at
// 230 MB after one 50 MB result (62 MB before). A full collection shortly after such a frame gives
// it back. dwd is started without --expose-gc (systemd, `dwd &`), so the function is asked for here.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Frames at least this large are followed by a collection. */
export const LARGE_FRAME = 4 * 1024 * 1024;
const DELAY_MS = 200;

let gc: (() => void) | null | undefined;
let timer: NodeJS.Timeout | null = null;

function collector(): (() => void) | null {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as () => void;
    } catch {
      gc = null;
    }
  }
  return gc;
}

/** Call after writing a large frame: one collection once frames stop coming for a moment. */
export function collectSoon(): void {
  const collect = collector();
  if (!collect) return;
  if (timer) clearTimeout(timer);
  timer = setTimeout(() => {
    timer = null;
    collect();
  }, DELAY_MS);
  timer.unref();
}
