import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DelayedKeys } from '../../src/queue/delays.ts';
import { KeyFifo } from '../../src/queue/fifo.ts';
import { TokenBucket } from '../../src/queue/token-bucket.ts';
import { WorkQueue } from '../../src/queue/workqueue.ts';

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await sleep(2);
  }
}

describe('delayed keys (one timer for all)', () => {
  it('releases keys in due order, each once, the earlier due time winning', async () => {
    const released: string[] = [];
    const delayed = new DelayedKeys((key) => released.push(key));
    const now = Date.now();
    delayed.schedule('c', now + 60);
    delayed.schedule('a', now + 20);
    delayed.schedule('b', now + 40);
    expect(delayed.schedule('a', now + 80)).toBe(false); // a later time for a waiting key is ignored
    expect(delayed.schedule('c', now + 30)).toBe(true); // an earlier one replaces it
    expect(delayed.size).toBe(3);
    await until(() => released.length === 3);
    expect(released).toEqual(['a', 'c', 'b']);
    expect(delayed.size).toBe(0);
  });

  it('forgets deleted keys and stays compact when keys are re-armed many times', async () => {
    const released: string[] = [];
    const delayed = new DelayedKeys((key) => released.push(key));
    const now = Date.now();
    for (let i = 5000; i > 0; i--) delayed.schedule('k', now + 30 + i);
    delayed.schedule('gone', now + 10);
    expect(delayed.delete('gone')).toBe(true);
    expect(delayed.nextDueAt()).toBe(now + 31);
    await until(() => released.length >= 1);
    await sleep(20);
    expect(released).toEqual(['k']);
    delayed.clear();
  });

  it('agrees with a plain map of earliest due times over random schedules', () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 200; round++) {
      const delayed = new DelayedKeys(() => {});
      const reference = new Map<string, number>();
      for (let op = random(40); op > 0; op--) {
        const key = `k${random(20)}`;
        if (random(4) === 0) {
          delayed.delete(key);
          reference.delete(key);
          continue;
        }
        const at = 1e12 + random(1000);
        delayed.schedule(key, at);
        if (!reference.has(key) || (reference.get(key) as number) > at) reference.set(key, at);
      }
      const earliest = reference.size > 0 ? Math.min(...reference.values()) : undefined;
      expect(delayed.nextDueAt()).toBe(earliest);
      expect(delayed.size).toBe(reference.size);
      delayed.clear();
    }
  });
});

describe('the key FIFO', () => {
  it('keeps insertion order, ignores repeats, skips deleted keys', () => {
    const fifo = new KeyFifo();
    for (const key of ['a', 'b', 'a', 'c']) fifo.add(key);
    fifo.delete('b');
    fifo.add('b');
    expect([fifo.shift(), fifo.shift(), fifo.shift(), fifo.shift()]).toEqual(['a', 'c', 'b', undefined]);
    expect(fifo.size).toBe(0);
  });

  it('drains 100,000 keys in linear time', () => {
    const fifo = new KeyFifo();
    for (let i = 0; i < 100_000; i++) fifo.add(`k${i}`);
    let count = 0;
    while (fifo.shift() !== undefined) count++;
    expect(count).toBe(100_000);
  });
});

describe('the token bucket', () => {
  it('allows a burst, then the rate', () => {
    const bucket = new TokenBucket(2, 3, 0);
    expect([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(bucket.waitMs(0)).toBe(500);
    expect(bucket.take(500)).toBe(true);
    expect(bucket.take(500)).toBe(false);
    expect(bucket.isFull(10_000)).toBe(true);
  });

  it('refuses nonsense limits', () => {
    expect(() => new TokenBucket(0, 1)).toThrow(/perSecond/);
  });
});

describe('the work queue going idle', () => {
  const logger = pino({ level: 'silent' });

  it('resolves once every key ran, counting keys deferred briefly but not long backstops', async () => {
    const runs = new Map<string, number>();
    const queue = new WorkQueue({
      name: 'idle',
      workers: 4,
      logger,
      reconcile: async (key) => {
        const n = (runs.get(key) ?? 0) + 1;
        runs.set(key, n);
        await sleep(1);
        // The first run of each key asks to come back soon (as before both caches synced); then a
        // long backstop, which idle() does not wait for.
        return { requeueAfter: n === 1 ? 20 : 60_000 };
      },
    });
    const controller = new AbortController();
    queue.start(controller.signal);
    for (let i = 0; i < 50; i++) queue.add(`k${i}`);
    await queue.idle({ dueWithinMs: 1000 });
    expect([...runs.values()].every((n) => n === 2)).toBe(true);
    expect(queue.delayedCount).toBe(50);
    controller.abort();
  });
});
