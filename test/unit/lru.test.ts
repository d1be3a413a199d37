import { describe, expect, it } from 'vitest';
import { boundedLru } from '../../src/lru.ts';

describe('boundedLru', () => {
  it('keeps at most its limit, evicting the least recently used first', () => {
    const cache = boundedLru<string, number>({ limit: 3 });
    cache.set('a', 1);
    cache.set('b', 2);
    cache.get('a');
    cache.set('c', 3);
    cache.set('d', 4);
    expect([...cache.keys()].sort()).toEqual(['a', 'c', 'd']);
    expect(cache.size).toBe(3);
    for (let i = 0; i < 1000; i++) cache.set(`k${i}`, i);
    expect(cache.size).toBe(3);
    expect(cache.get('k999')).toBe(999);
  });

  it('honours a ttl', () => {
    let now = 1_000;
    const cache = boundedLru<string, true>({
      limit: 10,
      ttl: 50,
      ttlResolution: 0,
      perf: { now: () => now },
    });
    cache.set('a', true);
    now += 40;
    expect(cache.get('a')).toBe(true);
    now += 20;
    expect(cache.get('a')).toBeUndefined();
  });

  it('allocates nothing up front for its limit (lru-cache with max preallocates ~4 MB per 100,000)', () => {
    const before = process.memoryUsage();
    const caches = Array.from({ length: 50 }, () =>
      boundedLru<string, number>({ limit: 100_000, ttl: 60_000 }),
    );
    const after = process.memoryUsage();
    const grewMiB = (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / 2 ** 20;
    // Preallocated, 50 such caches would take about 200 MiB.
    expect(grewMiB).toBeLessThan(20);
    expect(caches.every((c) => c.size === 0)).toBe(true);
  });

  it('refuses a limit that is not a positive integer', () => {
    expect(() => boundedLru({ limit: 0 })).toThrow(/positive integer/);
    expect(() => boundedLru({ limit: 1.5 })).toThrow(/positive integer/);
  });
});
