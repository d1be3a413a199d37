// Spillway's memory of its own recent writes and of what the remote answered, per host pod, kept until
// the informers have seen the effect: nothing is created twice, and no status ping-pongs between a
// stale cache and a fresh write. Each entry is stamped with the host pod's UID, so a namesake (a pod
// re-created under the same name) never inherits an earlier pod's memory.
import type { V1PodStatus } from '@kubernetes/client-node';
import { boundedLru } from '../lru.ts';

/** What the remote said to a delegate create that calls for a decision (the planner makes it). */
export type CreateOutcome =
  /** 422/400: the remote will never run this pod. */
  | { readonly kind: 'rejected'; readonly message: string }
  /** 403: admission policy or quota; may pass later. */
  | { readonly kind: 'forbidden'; readonly message: string; readonly attempts: number }
  /** 409 AlreadyExists, and the pod holding the name is not this node's current delegate. */
  | { readonly kind: 'nameTaken'; readonly message: string };

/** What the planner may know about one host pod (read-only). */
export interface PodRecall {
  /** When a delegate create succeeded. */
  readonly createdAt?: number;
  /** Whether the delegate informer has shown the delegate since. */
  readonly seen?: boolean;
  /** When a create was sent whose result is unknown (the request failed on the way). */
  readonly attemptedAt?: number;
  readonly outcome?: CreateOutcome & { readonly at: number };
  readonly unschedulableSince?: number;
  readonly deletionCostSet?: boolean;
  /** The status we last wrote, with the resourceVersion the write produced (until the informer has it). */
  readonly writtenStatus?: { readonly resourceVersion: string; readonly status: V1PodStatus };
  /** The resourceVersions at which the delegate's spec was last found to match the host pod's. */
  readonly specInSync?: { readonly host: string; readonly delegate: string };
  /** Reasons of one-time events already recorded for this pod. */
  readonly announced: ReadonlySet<string>;
}

interface Entry {
  uid: string;
  createdAt?: number;
  seen?: boolean;
  attemptedAt?: number;
  outcome?: CreateOutcome & { at: number };
  unschedulableSince?: number;
  deletionCostSet?: boolean;
  writtenStatus?: { resourceVersion: string; status: V1PodStatus; at: number };
  specInSync?: { host: string; delegate: string };
  announced: Set<string>;
}

/** A status write older than this is forgotten even if the informer never showed it (it was superseded). */
const WRITTEN_STATUS_TTL_MS = 30_000;
/** How long a delete request is remembered (a delegate takes at most its grace period to go). */
const DELETE_MEMORY_MS = 10 * 60_000;

export class PodMemory {
  private readonly entries = new Map<string, Entry>();
  /**
   * Delegate UIDs Spillway asked the remote to delete. Bounded and expiring in O(1) per operation
   * (the previous scan of the whole map on every insert once it held 10,000 entries was O(n²)).
   */
  private readonly deleteRequests = boundedLru<string, number>({ limit: 100_000, ttl: DELETE_MEMORY_MS });

  private entry(key: string, uid: string): Entry {
    const existing = this.entries.get(key);
    if (existing?.uid === uid) return existing;
    const fresh: Entry = { uid, announced: new Set() };
    this.entries.set(key, fresh);
    return fresh;
  }

  /** What is remembered about the pod with this key and UID (nothing, for a namesake). */
  recall(key: string, uid: string, hostResourceVersion: string | undefined, now = Date.now()): PodRecall {
    const entry = this.entries.get(key);
    if (!entry || entry.uid !== uid) return { announced: new Set() };
    const written = entry.writtenStatus;
    if (
      written &&
      (written.resourceVersion === hostResourceVersion || now - written.at > WRITTEN_STATUS_TTL_MS)
    ) {
      entry.writtenStatus = undefined;
    }
    return entry;
  }

  rememberAttempt(key: string, uid: string, now = Date.now()): void {
    const entry = this.entry(key, uid);
    entry.attemptedAt = now;
    entry.outcome = undefined;
  }

  rememberCreate(key: string, uid: string, now = Date.now()): void {
    const entry = this.entry(key, uid);
    entry.createdAt = now;
    entry.attemptedAt = undefined;
    entry.outcome = undefined;
  }

  /** The delegate informer shows this pod's delegate: no create is in flight any more. */
  delegateSeen(key: string, uid: string): void {
    const entry = this.entries.get(key);
    if (entry?.uid !== uid || entry.seen) return;
    entry.seen = true;
    entry.attemptedAt = undefined;
  }

  /** The create was answered: nothing was created (the answer is in `outcome`, if it needs a decision). */
  rememberOutcome(key: string, uid: string, outcome: CreateOutcome | undefined, now = Date.now()): void {
    const entry = this.entry(key, uid);
    entry.attemptedAt = undefined;
    entry.outcome = outcome ? { ...outcome, at: now } : undefined;
  }

  rememberDelete(delegateUid: string | undefined, now = Date.now()): void {
    if (delegateUid) this.deleteRequests.set(delegateUid, now);
  }

  /** When Spillway last asked the remote to delete this delegate, if it did. */
  deleteRequestedAt(delegateUid: string | undefined): number | undefined {
    return delegateUid === undefined ? undefined : this.deleteRequests.get(delegateUid);
  }

  markUnschedulable(key: string, uid: string, since: number): void {
    this.entry(key, uid).unschedulableSince = since;
  }

  clearUnschedulable(key: string, uid: string): void {
    const entry = this.entries.get(key);
    if (entry?.uid === uid) entry.unschedulableSince = undefined;
  }

  rememberStatus(
    key: string,
    uid: string,
    resourceVersion: string,
    status: V1PodStatus,
    now = Date.now(),
  ): void {
    this.entry(key, uid).writtenStatus = { resourceVersion, status, at: now };
  }

  forgetStatus(key: string, uid: string): void {
    const entry = this.entries.get(key);
    if (entry?.uid === uid) entry.writtenStatus = undefined;
  }

  markSpecInSync(key: string, uid: string, host: string, delegate: string): void {
    this.entry(key, uid).specInSync = { host, delegate };
  }

  rememberDeletionCost(key: string, uid: string, set: boolean): void {
    this.entry(key, uid).deletionCostSet = set;
  }

  announce(key: string, uid: string, reason: string): void {
    this.entry(key, uid).announced.add(reason);
  }

  /** Everything about a host pod that is gone. */
  forget(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
