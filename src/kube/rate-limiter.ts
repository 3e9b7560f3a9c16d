/**
 * Client-side token bucket, as client-go's `flowcontrol.NewTokenBucketRateLimiter(qps, burst)`: the bucket holds at
 * most `burst` tokens, refills at `qps` tokens per second, and each request takes one token, waiting (first come,
 * first served) when the bucket is empty.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly waiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param qps - sustained rate, tokens per second (> 0).
   * @param burst - bucket size, tokens (≥ 1); the bucket starts full.
   * @param now - monotonic clock in milliseconds (tests); defaults to `performance.now`.
   * @throws RangeError when qps or burst is not positive.
   */
  constructor(
    readonly qps: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(qps > 0) || !Number.isFinite(qps)) throw new RangeError(`qps must be > 0, got ${qps}`);
    if (!(burst >= 1) || !Number.isFinite(burst)) throw new RangeError(`burst must be ≥ 1, got ${burst}`);
    this.tokens = burst;
    this.last = now();
  }

  /** Requests waiting for a token now. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Resolves when a token has been taken (at once while the bucket holds one and nobody waits). Never rejects. */
  acquire(): Promise<void> {
    this.refill();
    if (this.waiters.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.waiters.push(resolve);
      this.schedule();
    });
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.qps);
    this.last = t;
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    const ms = Math.max(0, ((1 - this.tokens) / this.qps) * 1000);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refill();
      while (this.waiters.length > 0 && this.tokens >= 1) {
        this.tokens -= 1;
        this.waiters.shift()?.();
      }
      if (this.waiters.length > 0) this.schedule();
    }, Math.ceil(ms));
    this.timer.unref();
  }
}
