/** Clock and sleep, injectable so tests check waits without waiting. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface RateLimitOptions {
  /** Sustained requests per second; default 2. */
  requestsPerSecond?: number;
  /** Requests allowed at once after a quiet spell; default 4. */
  burst?: number;
}

/**
 * A token bucket: `take()` resolves when a request may go. Callers queue in order, so a batch
 * of look-ups is spread out instead of hitting CivitAI's edge limits.
 */
export class TokenBucket {
  readonly #rate: number;
  readonly #capacity: number;
  readonly #clock: Clock;
  #tokens: number;
  #last: number;
  #queue: Promise<void> = Promise.resolve();

  constructor(options: RateLimitOptions = {}, clock: Clock = realClock) {
    this.#rate = Math.max(1e-6, options.requestsPerSecond ?? 2);
    this.#capacity = Math.max(1, options.burst ?? 4);
    this.#clock = clock;
    this.#tokens = this.#capacity;
    this.#last = clock.now();
  }

  #refill(): void {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#capacity, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
    this.#last = now;
  }

  take(): Promise<void> {
    const turn = this.#queue.then(async () => {
      this.#refill();
      if (this.#tokens < 1) {
        await this.#clock.sleep(Math.ceil(((1 - this.#tokens) / this.#rate) * 1000));
        this.#refill();
      }
      this.#tokens = Math.max(0, this.#tokens - 1);
    });
    this.#queue = turn.catch(() => undefined);
    return turn;
  }
}
