import { describe, expect, it } from "vitest";
import { TokenBucket, type Clock } from "./rate-limiter.js";
import { backoffDelay, parseRetryAfter } from "./retry-policy.js";

/** A fake clock: sleeping advances time, so the bucket's waits are exact. */
function fakeClock(): Clock & { sleeps: number[]; t: number } {
  const c = {
    t: 1_000_000,
    sleeps: [] as number[],
    now: () => c.t,
    sleep: async (ms: number) => {
      c.sleeps.push(ms);
      c.t += ms;
    },
  };
  return c;
}

describe("TokenBucket", () => {
  it("lets a burst through, then one request per interval", async () => {
    const clock = fakeClock();
    const bucket = new TokenBucket({ requestsPerSecond: 4, burst: 3 }, clock);
    for (let i = 0; i < 6; i++) await bucket.take();
    expect(clock.sleeps).toEqual([250, 250, 250]);
  });
  it("refills while idle, up to the burst", async () => {
    const clock = fakeClock();
    const bucket = new TokenBucket({ requestsPerSecond: 1, burst: 2 }, clock);
    await bucket.take();
    await bucket.take();
    clock.t += 10_000;
    await bucket.take();
    await bucket.take();
    await bucket.take();
    expect(clock.sleeps).toEqual([1000]);
  });
  it("concurrent callers are served in order, spaced out", async () => {
    const clock = fakeClock();
    const bucket = new TokenBucket({ requestsPerSecond: 2, burst: 1 }, clock);
    const order: number[] = [];
    await Promise.all([0, 1, 2].map((i) => bucket.take().then(() => order.push(i))));
    expect(order).toEqual([0, 1, 2]);
    expect(clock.sleeps).toEqual([500, 500]);
  });
});

describe("retry policy", () => {
  it("parses Retry-After seconds and HTTP dates", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter("0", now)).toBe(0);
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Wed, 31 Dec 2025 23:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
  it("backs off exponentially with jitter and a cap", () => {
    expect([0, 1, 2, 3].map((a) => backoffDelay(a, { baseDelayMs: 100, maxDelayMs: 500 }, () => 1))).toEqual([100, 200, 400, 500]);
    expect([0, 1, 2].map((a) => backoffDelay(a, { baseDelayMs: 100 }, () => 0))).toEqual([50, 100, 200]);
  });
});
