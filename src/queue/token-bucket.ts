// A token bucket: `burst` tokens at most, refilled at `perSecond`. take() spends one if there is one;
// waitMs() says how long until the next.

export class TokenBucket {
  private tokens: number;
  private updatedAt: number;
  readonly perSecond: number;
  readonly burst: number;

  constructor(perSecond: number, burst: number, now = Date.now()) {
    if (!(perSecond > 0) || !(burst >= 1)) throw new Error('token bucket: perSecond > 0 and burst >= 1');
    this.perSecond = perSecond;
    this.burst = burst;
    this.tokens = burst;
    this.updatedAt = now;
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.perSecond);
    this.updatedAt = now;
  }

  take(now = Date.now()): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until a token is available (0: now). */
  waitMs(now = Date.now()): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.perSecond) * 1000);
  }

  /** Full again: a bucket in this state can be forgotten and created anew without changing anything. */
  isFull(now = Date.now()): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }
}
