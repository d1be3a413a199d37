// What the executor remembers about a pod's own Secret and subresource writes until the caches show
// them: the Secret it just wrote (so the next reconcile does not write it again from a cache that has
// not seen it yet), TokenRequests that failed (retried with back-off) and names taken by objects that
// are not ours. Entries are stamped with the host pod's UID and expire on their own.

import { boundedLru } from '../lru.ts';
import type { PodSecretView } from './pod-secret.ts';

/** Our write is preferred over a cache that does not show it yet, for at most this long. */
const WRITTEN_TTL_MS = 30_000;

interface Stamped<T> {
  readonly uid: string;
  readonly at: number;
  readonly value: T;
}

export interface TokenFailure {
  readonly message: string;
  readonly at: number;
  readonly attempts: number;
}

export class WorkloadMemory {
  private readonly written = boundedLru<string, Stamped<PodSecretView>>({ limit: 100_000 });
  private readonly failures = boundedLru<string, Stamped<TokenFailure>>({ limit: 100_000, ttl: 10 * 60_000 });
  private readonly conflicts = boundedLru<string, Stamped<string>>({ limit: 10_000, ttl: 60_000 });

  /** The pod's Secret as our last write left it, unless the cache has caught up (or it is too old). */
  podSecret(
    key: string,
    uid: string,
    cached: PodSecretView | undefined,
    now = Date.now(),
  ): PodSecretView | undefined {
    const written = this.written.get(key);
    if (!written || written.uid !== uid || now - written.at > WRITTEN_TTL_MS) return cached;
    if (cached?.resourceVersion === written.value.resourceVersion) {
      this.written.delete(key);
      return cached;
    }
    return written.value;
  }

  rememberPodSecret(key: string, uid: string, view: PodSecretView, now = Date.now()): void {
    this.written.set(key, { uid, at: now, value: view });
    this.failures.delete(key);
    this.conflicts.delete(key);
  }

  /** Our Secret was deleted (by us, or found gone): nothing remembered stands for it. */
  forgetPodSecret(key: string): void {
    this.written.delete(key);
  }

  failure(key: string, uid: string): TokenFailure | undefined {
    const entry = this.failures.get(key);
    return entry?.uid === uid ? entry.value : undefined;
  }

  rememberFailure(key: string, uid: string, message: string, now = Date.now()): void {
    const attempts = (this.failure(key, uid)?.attempts ?? 0) + 1;
    this.failures.set(key, { uid, at: now, value: { message, at: now, attempts } });
  }

  conflict(key: string, uid: string): string | undefined {
    const entry = this.conflicts.get(key);
    return entry?.uid === uid ? entry.value : undefined;
  }

  rememberConflict(key: string, uid: string, message: string, now = Date.now()): void {
    this.conflicts.set(key, { uid, at: now, value: message });
  }
}
