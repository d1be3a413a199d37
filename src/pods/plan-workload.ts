// The planner's steps for what a delegate needs besides itself, pure (plan.ts calls them): the pod's own
// Secret (host tokens, downward files), the namespace policy, the pod's claims, and the changes a running
// pod takes through subresources (ephemeral containers, resize). Each returns actions for the executor.
import type { V1Pod } from '@kubernetes/client-node';
import { ephemeralToAdd, resizeOf } from './live.ts';
import type { ObjectRef, PodAction, PodFacts } from './plan.ts';
import { type PodSecretSpec, type PodSecretView, planPodSecret } from './pod-secret.ts';

/** Why a pod cannot run here yet or at all, with what to do about it. */
export interface WorkloadVerdict {
  readonly reason: string;
  readonly message: string;
  /** fail: the host pod fails (its controller replaces it); wait: it stays Pending and is looked at again. */
  readonly outcome: 'fail' | 'wait' | 'never';
  /** wait: when to look again (events about the cause requeue it sooner). */
  readonly retryAfterMs?: number;
}

export interface PodSecretFacts {
  /** What the Secret must hold (undefined: the pod needs none). */
  readonly desired?: PodSecretSpec;
  /** The Secret as cached, or as our last write left it. */
  readonly current?: PodSecretView;
  /** The pod's service-account choice is not allowed or not possible. */
  readonly refusal?: WorkloadVerdict;
  /** The last TokenRequest failed (retried with back-off). */
  readonly failure?: { readonly message: string; readonly at: number; readonly attempts: number };
  /** The Secret's name is taken in the remote by an object that is not ours. */
  readonly conflict?: string;
  readonly maxTokenAgeMs: number;
}

const refOf = (view: PodSecretView): ObjectRef => ({
  namespace: view.namespace,
  name: view.name,
  uid: view.uid ?? '',
});

export function deletePodSecret(view: PodSecretView, why: string): PodAction {
  return { kind: 'deletePodSecret', target: refOf(view), why };
}

/** A delegate about to be created: its Secret first (or why it cannot be written yet). */
export function podSecretBeforeCreate(
  hostPod: V1Pod,
  facts: PodFacts,
): { readonly actions: PodAction[]; readonly blocked?: WorkloadVerdict } {
  const secret = facts.podSecret?.();
  if (!secret) return { actions: [] };
  if (secret.refusal) return { actions: [], blocked: secret.refusal };
  if (secret.conflict) {
    return {
      actions: [],
      blocked: {
        reason: 'ReflectionConflict',
        message: secret.conflict,
        outcome: 'wait',
        retryAfterMs: 60_000,
      },
    };
  }
  const waiting = tokenBackoff(secret, facts.now);
  if (waiting !== undefined) {
    const verdict: WorkloadVerdict = {
      reason: 'ServiceAccountTokenFailed',
      message: `requesting the pod's service-account token from the host failed: ${secret.failure?.message}`,
      outcome: 'wait',
      retryAfterMs: waiting,
    };
    return { actions: [], blocked: verdict };
  }
  return { actions: maintain(hostPod, secret, facts).actions };
}

/** How long to wait before asking the host for a token again after it refused one (undefined: ask now). */
function tokenBackoff(secret: PodSecretFacts, now: number): number | undefined {
  if (!secret.failure) return undefined;
  const backoff = Math.min(60_000, 1000 * 2 ** Math.min(secret.failure.attempts - 1, 6));
  const waited = now - secret.failure.at;
  return waited < backoff ? backoff - waited : undefined;
}

/** The Secret of a running pod: tokens refreshed before they are due, files following the host pod. */
export function maintain(
  hostPod: V1Pod,
  secret: PodSecretFacts,
  facts: PodFacts,
): { readonly actions: PodAction[]; readonly requeueAfterMs?: number } {
  if (!secret.desired) {
    // Nothing host-only to carry any more (cannot happen for a pod's immutable volumes, but a stray Secret goes).
    return { actions: secret.current ? [deletePodSecret(secret.current, 'the pod needs no Secret')] : [] };
  }
  const plan = planPodSecret(hostPod.metadata?.uid ?? '', secret.desired, secret.current, {
    now: facts.now,
    maxTokenAgeMs: secret.maxTokenAgeMs,
  });
  if (plan.stale) {
    return {
      actions: [deletePodSecret(plan.stale, 'it belongs to an earlier pod of this name')],
      requeueAfterMs: 1000,
    };
  }
  const requeueAfterMs =
    plan.nextRefreshAt !== undefined ? Math.max(1000, plan.nextRefreshAt - facts.now) : undefined;
  // A token the host just refused is asked for again after a back-off (the files are written meanwhile).
  const waiting = tokenBackoff(secret, facts.now);
  let write = plan.write;
  if (write && waiting !== undefined && write.issue.length > 0) {
    write = write.downwardChanged ? { ...write, issue: [] } : undefined;
  }
  const actions: PodAction[] = write ? [{ kind: 'writePodSecret', write }] : [];
  return { actions, requeueAfterMs: sooner(requeueAfterMs, waiting) };
}

/** A host pod gone (or its remote being removed): its Secret goes, whoever may still read it. */
export function podSecretCleanup(facts: PodFacts, why: string): PodAction[] {
  const current = facts.podSecret?.().current;
  return current?.uid ? [deletePodSecret(current, why)] : [];
}

/**
 * Changes a running delegate takes through its subresources, one per reconcile (each moves its
 * resourceVersion, the precondition of the next): ephemeral containers first, then a resize.
 */
export function liveChanges(desired: V1Pod, delegate: V1Pod): PodAction | undefined {
  const target: ObjectRef = {
    namespace: delegate.metadata?.namespace ?? '',
    name: delegate.metadata?.name ?? '',
    uid: delegate.metadata?.uid ?? '',
  };
  const resourceVersion = delegate.metadata?.resourceVersion ?? '';
  const containers = ephemeralToAdd(desired, delegate);
  if (containers.length > 0) return { kind: 'addEphemeralContainers', target, resourceVersion, containers };
  const resize = resizeOf(desired, delegate);
  if (resize.length > 0) return { kind: 'resizeDelegate', target, resourceVersion, containers: resize };
  return undefined;
}

/** The delegate's body for its create: ephemeral containers cannot be set then (they come after). */
export function forCreate(delegate: V1Pod): V1Pod {
  if (!delegate.spec?.ephemeralContainers) return delegate;
  const { ephemeralContainers: _later, ...spec } = delegate.spec;
  return { ...delegate, spec };
}

/** The earliest of two optional delays. */
export function sooner(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}
