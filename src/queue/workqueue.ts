// A keyed, de-duplicating, rate-limited work queue, as client-go's workqueue: handlers only add keys;
// workers take them and re-read state. A key is never processed by two workers at once; a key added
// while it is being processed runs again afterwards; failures back off exponentially per key.
import type { Logger } from 'pino';
import { isTerminal, messageOf, retryAfterSecondsOf } from '../kube/errors.ts';
import { type QueueInstruments, queueInstruments } from '../metrics/instruments.ts';
import { DelayedKeys } from './delays.ts';
import { KeyFifo } from './fifo.ts';

export interface ReconcileResult {
  /** Process the key again after this many milliseconds (a level-based "check back later"). */
  readonly requeueAfter?: number;
}

export type Reconciler = (key: string) => Promise<ReconcileResult | undefined>;

export interface WorkQueueOptions {
  readonly name: string;
  readonly workers: number;
  readonly reconcile: Reconciler;
  readonly logger: Logger;
  /** First retry delay after a failure; doubles per consecutive failure of the same key. */
  readonly baseBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

const PRIORITY_RUN = 8;

export class WorkQueue {
  readonly name: string;
  private readonly workers: number;
  private readonly reconcile: Reconciler;
  private readonly logger: Logger;
  private readonly baseBackoffMs: number;
  private readonly maxBackoffMs: number;

  /** Insertion-ordered: the first key is the next to run. */
  private readonly queued = new KeyFifo();
  /**
   * Keys added with priority: run before the others (at most PRIORITY_RUN in a row, so the others
   * keep moving). Used for cheap, latency-sensitive work, such as reflecting a status that changed.
   */
  private readonly urgent = new KeyFifo();
  private urgentInARow = 0;
  private readonly processing = new Set<string>();
  /** Keys added while they were being processed; they run again when that finishes. */
  private readonly dirty = new Set<string>();
  /** Keys waiting for a time (requeueAfter, backoff): one timer for all of them. */
  private readonly delayed = new DelayedKeys((key) => this.add(key));
  private readonly failures = new Map<string, number>();
  /** Idle workers; an added key wakes one of them, not all. */
  private sleepers: (() => void)[] = [];
  private idleWaiters: { dueWithinMs: number; resolve: () => void }[] = [];
  private shuttingDown = false;
  private running: Promise<void>[] = [];
  private readonly metrics: QueueInstruments;

  constructor(options: WorkQueueOptions) {
    if (!options.name) throw new Error('work queue: missing name');
    if (!(options.workers >= 1)) throw new Error(`work queue ${options.name}: workers must be at least 1`);
    this.name = options.name;
    this.workers = options.workers;
    this.reconcile = options.reconcile;
    this.logger = options.logger;
    this.baseBackoffMs = options.baseBackoffMs ?? 200;
    this.maxBackoffMs = options.maxBackoffMs ?? 60_000;
    this.metrics = queueInstruments(options.name);
  }

  /** Number of keys waiting (not counting delayed ones or those being processed). */
  get length(): number {
    return this.queued.size + this.urgent.size;
  }

  get inFlight(): number {
    return this.processing.size;
  }

  get delayedCount(): number {
    return this.delayed.size;
  }

  add(key: string, priority = false): void {
    if (this.shuttingDown) return;
    this.delayed.delete(key);
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.urgent.has(key)) return;
    if (priority) {
      this.queued.delete(key);
      this.urgent.add(key);
    } else {
      this.queued.add(key);
    }
    this.metrics.added();
    this.metrics.depth(this.length);
    this.sleepers.pop()?.();
  }

  /** Adds the key after a delay; an earlier pending delay for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    this.delayed.schedule(key, Date.now() + delayMs);
  }

  /** Re-adds a failed key after its per-key exponential backoff (or the server's Retry-After). */
  addRateLimited(key: string, error?: unknown): number {
    const attempts = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, attempts);
    const exponential = Math.min(this.maxBackoffMs, this.baseBackoffMs * 2 ** (attempts - 1));
    const retryAfterMs = (retryAfterSecondsOf(error) ?? 0) * 1000;
    // Jitter spreads retries of many keys that failed together (an outage) over time.
    const delay = Math.max(retryAfterMs, exponential * (0.8 + Math.random() * 0.4));
    this.addAfter(key, delay);
    this.metrics.retried();
    return delay;
  }

  /** Clears the failure history of a key (after a success). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Starts the workers; they stop when the signal aborts (after finishing the keys in hand). */
  start(signal: AbortSignal): void {
    if (this.running.length > 0) throw new Error(`work queue ${this.name} already started`);
    signal.addEventListener('abort', () => this.shutdown(), { once: true });
    for (let i = 0; i < this.workers; i++) this.running.push(this.work());
  }

  /** Stops taking keys and resolves when every worker has finished its current key. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    this.metrics.closed();
    this.delayed.clear();
    const sleepers = this.sleepers;
    this.sleepers = [];
    for (const wake of sleepers) wake();
    await Promise.all(this.running);
    this.notifyIdle();
  }

  /**
   * Resolves once no key is queued, none is being processed and none is due within `dueWithinMs`
   * (a key deferred briefly, e.g. until both caches synced, still counts; one waiting minutes for a
   * grace period does not): after a restart's initial lists, "every key has been looked at".
   */
  idle({ dueWithinMs = 0 }: { dueWithinMs?: number } = {}): Promise<void> {
    const waiter = { dueWithinMs, resolve: () => {} };
    const done = new Promise<void>((resolve) => {
      waiter.resolve = resolve;
    });
    this.idleWaiters.push(waiter);
    this.notifyIdle();
    return done;
  }

  private isIdle(dueWithinMs: number): boolean {
    if (this.shuttingDown) return true;
    if (this.queued.size > 0 || this.urgent.size > 0 || this.processing.size > 0) return false;
    const next = this.delayed.nextDueAt();
    return next === undefined || next > Date.now() + dueWithinMs;
  }

  private notifyIdle(): void {
    if (this.idleWaiters.length === 0) return;
    const waiting = this.idleWaiters;
    this.idleWaiters = waiting.filter((w) => !this.isIdle(w.dueWithinMs));
    for (const waiter of waiting) if (!this.idleWaiters.includes(waiter)) waiter.resolve();
  }

  private next(): string | undefined {
    const takeUrgent = this.urgent.size > 0 && (this.urgentInARow < PRIORITY_RUN || this.queued.size === 0);
    this.urgentInARow = takeUrgent ? this.urgentInARow + 1 : 0;
    const key = (takeUrgent ? this.urgent : this.queued).shift();
    if (key !== undefined) this.metrics.depth(this.length);
    return key;
  }

  private async work(): Promise<void> {
    while (!this.shuttingDown) {
      const key = this.next();
      if (key === undefined) {
        await new Promise<void>((resolve) => this.sleepers.push(resolve));
        continue;
      }
      this.processing.add(key);
      try {
        await this.processOne(key);
      } finally {
        this.processing.delete(key);
        if (this.dirty.delete(key)) this.add(key);
        this.notifyIdle();
      }
    }
  }

  private async processOne(key: string): Promise<void> {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const result = await this.reconcile(key);
      this.forget(key);
      this.metrics.processed(seconds(), result?.requeueAfter !== undefined ? 'requeue' : 'success');
      if (result?.requeueAfter !== undefined) this.addAfter(key, result.requeueAfter);
    } catch (error) {
      this.metrics.processed(seconds(), isTerminal(error) ? 'terminal' : 'error');
      if (isTerminal(error)) {
        this.forget(key);
        this.logger.warn(
          { key, queue: this.name, err: messageOf(error) },
          'giving up on key: terminal error',
        );
        return;
      }
      const delay = this.addRateLimited(key, error);
      this.logger.info(
        {
          key,
          queue: this.name,
          attempts: this.failuresOf(key),
          retryInMs: Math.round(delay),
          err: messageOf(error),
        },
        'reconcile failed; retrying',
      );
    }
  }
}
