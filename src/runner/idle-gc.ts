// A run leaves tens of megabytes of tensors behind (the recogniser's output alone is megabytes per
// batch). V8 collects them when it sees fit, so between runs the runner's RSS saws up and down and
// an idle daemon can sit on a run's worth of garbage. A full collection once the runner has been
// idle briefly returns it while nobody waits; back-to-back runs never pay for it.

const IDLE_MS = 50;
let timer: NodeJS.Timeout | null = null;

/** Call when the last active run ends. */
export function collectWhenIdle(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return;
  if (timer) clearTimeout(timer);
  timer = setTimeout(() => {
    timer = null;
    gc();
  }, IDLE_MS);
  timer.unref();
}

/** Call when a run starts: it must not wait behind a collection. */
export function cancelIdleCollection(): void {
  if (timer) clearTimeout(timer);
  timer = null;
}
