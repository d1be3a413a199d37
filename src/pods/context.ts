// What a pod reconcile reads: both caches, the translation, and Spillway's memory of its own recent
// writes (kept until the informers have seen them, so nothing is created twice and no status
// ping-pongs between a stale cache and a fresh write).
import type { V1Pod, V1PodStatus } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { PodsConfig } from '../config.ts';
import type { Informer } from '../kube/informer.ts';
import type { AdmissionRefusal } from './admission.ts';
import type { Reflector } from './reflect.ts';
import type { StatusContext } from './status.ts';

export interface PodContext {
  readonly hostPods: Informer<V1Pod>;
  readonly delegates: Informer<V1Pod>;
  readonly remoteName: string;
  readonly logger: Logger;
  readonly reflector: Reflector;
  readonly memory: PodMemory;
  readonly unschedulable: PodsConfig['unschedulable'];
  /** How long a new delegate may stay Pending before its status is written (coalesces Pending→Running). */
  readonly statusSettleMs: number;
  delegateKey(hostKey: string): string;
  /** Looks up what forge needs from the remote (does the pod's PriorityClass exist there?). */
  prepare(hostPod: V1Pod): Promise<void>;
  forge(hostPod: V1Pod): V1Pod;
  statusContext(): StatusContext;
  /** Why the virtual node cannot run this pod at all (checked before its delegate is created). */
  admit(hostPod: V1Pod): AdmissionRefusal | undefined;
  /** Has the virtual node publish its capped capacity now (after a refusal for fragmentation). */
  capacityRefused(): Promise<void>;
  /** The pod-deletion-cost mirrored pods carry, or null. */
  readonly deletionCost: number | null;
}

const DELETE_MEMORY_MS = 10 * 60_000;

export class PodMemory {
  private readonly created = new Map<string, { uid: string; at: number }>();
  private readonly deleteRequests = new Map<string, number>();
  private readonly unschedulable = new Map<string, number>();
  private readonly deletionCosts = new Map<string, string>();
  private readonly statuses = new Map<string, { resourceVersion: string; status: V1PodStatus; at: number }>();

  rememberCreate(key: string, uid: string): void {
    this.created.set(key, { uid, at: Date.now() });
  }

  createdFor(key: string): { uid: string; at: number } | undefined {
    return this.created.get(key);
  }

  rememberDelete(delegateUid: string | undefined): void {
    if (!delegateUid) return;
    this.deleteRequests.set(delegateUid, Date.now());
    if (this.deleteRequests.size > 10_000) {
      const cutoff = Date.now() - DELETE_MEMORY_MS;
      for (const [uid, at] of this.deleteRequests) if (at < cutoff) this.deleteRequests.delete(uid);
    }
  }

  deleteRequested(delegateUid: string | undefined): boolean {
    return delegateUid !== undefined && this.deleteRequests.has(delegateUid);
  }

  unschedulableSince(key: string): number {
    const since = this.unschedulable.get(key) ?? Date.now();
    this.unschedulable.set(key, since);
    return since;
  }

  clearUnschedulable(key: string): void {
    this.unschedulable.delete(key);
  }

  /** The status we last wrote for a host pod, with the resourceVersion the write produced. */
  rememberStatus(key: string, resourceVersion: string, status: V1PodStatus): void {
    this.statuses.set(key, { resourceVersion, status, at: Date.now() });
  }

  /** Our last written status, unless the informer has caught up with it (or it is old). */
  writtenStatus(key: string, cached: V1Pod): { resourceVersion: string; status: V1PodStatus } | undefined {
    const written = this.statuses.get(key);
    if (!written) return undefined;
    if (written.resourceVersion === cached.metadata?.resourceVersion || Date.now() - written.at > 30_000) {
      this.statuses.delete(key);
      return undefined;
    }
    return written;
  }

  forgetStatus(key: string): void {
    this.statuses.delete(key);
  }

  /** Records that we set this pod's deletion cost; false if we already did (the informer lags). */
  rememberDeletionCost(key: string, uid: string): boolean {
    if (this.deletionCosts.get(key) === uid) return false;
    this.deletionCosts.set(key, uid);
    return true;
  }

  forgetDeletionCost(key: string): void {
    this.deletionCosts.delete(key);
  }

  /** Everything about a host pod that is gone. */
  forget(key: string): void {
    this.created.delete(key);
    this.deletionCosts.delete(key);
    this.unschedulable.delete(key);
    this.statuses.delete(key);
  }
}
