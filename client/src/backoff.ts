// Exponential backoff with full jitter: the n-th retry waits a uniformly random
// time between 0 and min(max, base * 2^n), so clients that lost the same server
// at the same moment do not come back in step.

export interface BackoffOptions {
  /** The ceiling of the first retry's delay (ms). Default 500. */
  baseMs?: number;
  /** The largest ceiling (ms). Default 20 000. */
  maxMs?: number;
  /** A source of uniform numbers in [0, 1); injectable for tests. Default Math.random. */
  random?: () => number;
}

export const DEFAULT_BACKOFF = { baseMs: 500, maxMs: 20_000 } as const;

/** The ceiling of retry number `attempt` (0-based). */
export function backoffCeiling(attempt: number, options: BackoffOptions = {}): number {
  const base = options.baseMs ?? DEFAULT_BACKOFF.baseMs;
  const max = options.maxMs ?? DEFAULT_BACKOFF.maxMs;
  // 2 ** attempt overflows to Infinity for large attempts; min() keeps it at max.
  return Math.min(max, base * 2 ** Math.max(0, attempt));
}

/** The delay before retry number `attempt` (0-based), in ms. */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const random = options.random ?? Math.random;
  return Math.floor(random() * backoffCeiling(attempt, options));
}
