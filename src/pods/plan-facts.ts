// What the pod planner (plan.ts) reads and what it returns: the facts of one host pod's reconcile and
// the actions the executor applies. Plain data, so the planner is table-tested with plain objects.
import type { V1EphemeralContainer, V1Pod, V1PodStatus } from '@kubernetes/client-node';
import type { EventType } from '../kube/events.ts';
import type { AdmissionRefusal } from './admission.ts';
import type { ContainerResize } from './live.ts';
import type { PodRecall } from './memory.ts';
import type { PodSecretFacts, WorkloadVerdict } from './plan-workload.ts';
import type { PodSecretWrite } from './pod-secret.ts';
import type { Reference } from './references.ts';

export interface ObjectRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

/** Everything the executor may be asked to do. New kinds (Services, tokens…) extend this union. */
export type PodAction =
  | { readonly kind: 'createDelegate'; readonly delegate: V1Pod; readonly references: readonly Reference[] }
  | {
      readonly kind: 'patchDelegate';
      readonly target: ObjectRef;
      readonly resourceVersion: string;
      readonly patch: Record<string, unknown>;
    }
  | {
      readonly kind: 'deleteDelegate';
      readonly target: ObjectRef;
      readonly gracePeriodSeconds?: number;
      readonly why: string;
    }
  | { readonly kind: 'writeStatus'; readonly write: StatusWrite }
  /** A status saying why the pod cannot run, and a Warning event saying the same (only when it changed). */
  | {
      readonly kind: 'refuse';
      readonly reason: string;
      readonly message: string;
      readonly write: StatusWrite;
    }
  | {
      readonly kind: 'event';
      readonly type: EventType;
      readonly reason: string;
      readonly message: string;
      /** Recorded once per pod and reason, not on every reconcile. */
      readonly once: boolean;
    }
  | { readonly kind: 'finalize'; readonly why: string }
  /** Has the virtual node publish its capped capacity before a refusal for lack of room is written. */
  | { readonly kind: 'flushCapacity' }
  | { readonly kind: 'setDeletionCost'; readonly cost: number }
  | { readonly kind: 'markUnschedulable'; readonly since: number }
  | { readonly kind: 'clearUnschedulable' }
  | { readonly kind: 'markSpecInSync'; readonly host: string; readonly delegate: string }
  /** The host pod is gone: forget it (memory, reflection usage). */
  | { readonly kind: 'forget' }
  | { readonly kind: 'requeue'; readonly afterMs: number }
  /** The pod's own Secret in the remote (host tokens, downward files), written before its delegate needs it. */
  | { readonly kind: 'writePodSecret'; readonly write: PodSecretWrite }
  | { readonly kind: 'deletePodSecret'; readonly target: ObjectRef; readonly why: string }
  /** `kubectl debug`: ephemeral containers the host pod has and the delegate lacks (ephemeralcontainers subresource). */
  | {
      readonly kind: 'addEphemeralContainers';
      readonly target: ObjectRef;
      readonly resourceVersion: string;
      readonly containers: readonly V1EphemeralContainer[];
    }
  /** In-place resize of the delegate's containers (resize subresource). */
  | {
      readonly kind: 'resizeDelegate';
      readonly target: ObjectRef;
      readonly resourceVersion: string;
      readonly containers: readonly ContainerResize[];
    }
  /** Nothing will ever change this pod's fate; do not retry. */
  | { readonly kind: 'giveUp'; readonly message: string };

export interface StatusWrite {
  /** The merge patch of the status (fields that went away are null). */
  readonly patch: Record<string, unknown>;
  /** The full status after the write, remembered until the informer shows it. */
  readonly status: V1PodStatus;
  /** Precondition: the host pod as we saw it (or as our last write left it). */
  readonly resourceVersion: string;
}

export interface ReferenceCheck {
  /** Mandatory references whose host object does not exist. */
  readonly missing: readonly Reference[];
  /** Same-named objects in the remote that are not ours (never overwritten). */
  readonly conflicts: readonly string[];
  /** What the delegate uses (the copies are written before it is created). */
  readonly references: readonly Reference[];
}

export interface PodPolicy {
  readonly unschedulable: { readonly policy: 'wait' | 'fail'; readonly timeoutSeconds: number };
  /** How long a new delegate may stay Pending before its status is written (coalesces Pending→Running). */
  readonly statusSettleMs: number;
  /** The pod-deletion-cost of mirrored ReplicaSet pods, or null; false once the host refused the patch. */
  readonly deletionCost: number | null;
  readonly deletionCostAllowed: boolean;
  /** Controller kinds whose pods are released after their grace while the remote is unreachable. */
  readonly releaseKinds: ReadonlySet<string>;
}

export interface PodFacts {
  readonly now: number;
  /** The delegate's namespace/name in the remote cluster. */
  readonly delegateKey: string;
  readonly remoteName: string;
  readonly synced: { readonly hostPods: boolean; readonly delegates: boolean };
  /** The latest moment up to which every delegate change is in the delegate cache (ms since epoch). */
  readonly delegatesCurrentThrough: number;
  /** unreachable: longer than the grace period; connecting: not reached yet since start. */
  readonly remote: 'reachable' | 'connecting' | 'unreachable';
  readonly nodeOutOfService: boolean;
  /** run: mirror; drain: the remote is being removed (delete delegates, then fail host pods). */
  readonly mode: 'run' | 'drain';
  readonly recall: PodRecall;
  /** When Spillway last asked to delete this delegate, or to finalise this host pod, by UID (undefined: never). */
  readonly deleteRequestedAt: (uid: string | undefined) => number | undefined;
  readonly policy: PodPolicy;
  readonly hostIP: string;
  /** The forged delegate. Called only when needed (creating, or the spec may have changed). */
  readonly desired: () => V1Pod;
  /** Why the virtual node refuses the pod outright (DaemonSet, no room on any remote node). */
  readonly admission: () => AdmissionRefusal | undefined;
  /** The pod's references as the reflection caches see them. */
  readonly references: () => ReferenceCheck;
  /** The pod's own Secret in the remote (undefined: the feature is off; see pod-secret.ts). */
  readonly podSecret?: () => PodSecretFacts;
  /** Why the pod's namespace does not let it run here (its offloading policy; see src/namespaces/). */
  readonly namespacePolicy?: () => WorkloadVerdict | undefined;
  /** Why the pod's claims cannot be used here, or not yet (undefined: claims are refused outright). */
  readonly volumes?: () => WorkloadVerdict | undefined;
}
