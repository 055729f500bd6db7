// Flow control for a run's saved outputs, on the runner's side: pieces go to the daemon only a
// window ahead of its acks, which come once the client's socket has taken each piece.
import type { RunEvent } from '../protocol/messages.js';

/**
 * Output pieces a run may have sent that its client has not yet taken (16 x 64 KiB). Without a
 * limit a large output sat whole in the daemon's memory, several times over, whenever a client
 * read slower than the runner wrote; with it a stalled client stalls its run, not the daemon.
 */
export const OUTPUT_WINDOW = 16;

/** A run's output pieces in flight, and what waits for an ack to send the next. */
export class OutputWindow {
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly signal: AbortSignal,
    /** Sends a piece to the daemon, asking for an ack. */
    private readonly sendPiece: (event: RunEvent) => void,
  ) {}

  async send(event: RunEvent): Promise<void> {
    while (this.inFlight >= OUTPUT_WINDOW) {
      this.signal.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        // One abort listener per wait, removed with it: thousands of pieces must not pile them up.
        const abort = () => reject(this.signal.reason);
        this.signal.addEventListener('abort', abort, { once: true });
        this.waiting.push(() => {
          this.signal.removeEventListener('abort', abort);
          resolve();
        });
      });
    }
    this.inFlight += 1;
    this.sendPiece(event);
  }

  acked(): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    this.waiting.shift()?.();
  }
}
