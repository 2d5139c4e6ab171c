export interface RetryOptions {
  /** Attempts after the first; default 4. */
  retries?: number;
  /** First backoff; doubles each attempt; default 1000 ms. */
  baseDelayMs?: number;
  /** Cap of one backoff; default 30 s. */
  maxDelayMs?: number;
  /** A longer Retry-After than this ends the retries instead of waiting; default 120 s. */
  maxRetryAfterMs?: number;
}

/**
 * `Retry-After` in milliseconds from now: delta-seconds or an HTTP-date; undefined when absent
 * or unparseable. A date in the past gives 0.
 */
export function parseRetryAfter(value: string | undefined | null, now: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Exponential backoff with full jitter over the upper half: base·2^attempt, capped, times 0.5–1. */
export function backoffDelay(attempt: number, options: RetryOptions = {}, random: () => number = Math.random): number {
  const base = options.baseDelayMs ?? 1000;
  const cap = options.maxDelayMs ?? 30_000;
  const raw = Math.min(cap, base * 2 ** attempt);
  return Math.round(raw * (0.5 + random() * 0.5));
}
