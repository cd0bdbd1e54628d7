// Polling with backoff for live runs: poll quickly while something changes, slow down while nothing does,
// pause while the tab is hidden, and stop when the callback says there is nothing left to watch.

export interface Backoff {
  min: number;
  max: number;
  factor: number;
}

export const LIVE_BACKOFF: Backoff = { min: 2000, max: 30000, factor: 1.6 };

/** Delay before the next poll: back to `min` after a change (or an error recovered), else grow to `max`. */
export function nextDelay(previous: number, changed: boolean, b: Backoff = LIVE_BACKOFF): number {
  if (changed) return b.min;
  return Math.min(b.max, Math.max(b.min, previous * b.factor));
}

/** `tick` returns true (changed), false (unchanged) or null (stop). Returns a function that stops polling. */
export function startPolling(tick: () => Promise<boolean | null>, b: Backoff = LIVE_BACKOFF): () => void {
  let delay = b.min;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const schedule = () => {
    if (!stopped) timer = setTimeout(run, delay);
  };
  const run = async () => {
    if (typeof document !== "undefined" && document.hidden) {
      schedule();
      return;
    }
    let result: boolean | null;
    try {
      result = await tick();
    } catch {
      result = false;
    }
    if (result === null || stopped) return;
    delay = nextDelay(delay, result, b);
    schedule();
  };
  schedule();
  return () => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
  };
}
