// Every LRU in Spillway: bounded in entries, with storage that grows as entries arrive. lru-cache
// allocates its arrays for `max` entries up front (keys, values, links and, with a ttl, two more
// arrays of numbers): a 100,000-entry cache with a ttl is 4 MB before its first entry, and each remote
// had several of them. Bounding by `maxSize` with every entry of size 1 keeps the same limit and
// eviction order without the preallocation (lru-cache documents that trade: a little speed for it).
import { LRUCache } from 'lru-cache';

export type LruOptions<K extends {}, V extends {}> = Omit<
  LRUCache.Options<K, V, unknown>,
  'max' | 'maxSize' | 'sizeCalculation' | 'maxEntrySize'
> & {
  /** Entries kept at most; the least recently used goes first. */
  readonly limit: number;
};

export function boundedLru<K extends {}, V extends {}>({
  limit,
  ...options
}: LruOptions<K, V>): LRUCache<K, V> {
  if (!Number.isInteger(limit) || limit < 1)
    throw new Error(`LRU limit must be a positive integer, not ${limit}`);
  return new LRUCache<K, V>({ ...options, maxSize: limit, sizeCalculation: () => 1 } as LRUCache.Options<
    K,
    V,
    unknown
  >);
}
