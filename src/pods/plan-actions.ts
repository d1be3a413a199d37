// The planner's building blocks for actions (plan.ts): status writes with their preconditions,
// refusals, failures, events, deletes and requeues. Pure.
import type { V1Pod, V1PodStatus } from '@kubernetes/client-node';
import type { ObjectRef, PodAction, PodFacts, StatusWrite } from './plan-facts.ts';
import { failedStatus, statusesEqual, withVerdict } from './status.ts';

/** The write that brings the host status to `status`, or undefined when it is that already. */
export function statusWrite(hostPod: V1Pod, facts: PodFacts, status: V1PodStatus): StatusWrite | undefined {
  const written = facts.recall.writtenStatus;
  const current = written?.status ?? hostPod.status;
  if (statusesEqual(current, status)) return undefined;
  // A merge patch leaves absent keys alone: fields that went away are nulled explicitly.
  const patch: Record<string, unknown> = { ...status };
  for (const field of Object.keys(current ?? {})) if (!(field in status)) patch[field] = null;
  return {
    patch,
    status,
    resourceVersion: written?.resourceVersion ?? hostPod.metadata?.resourceVersion ?? '',
  };
}

/** Failed with a reason, containers terminated, and an event: its controller replaces it. */
export function failWith(hostPod: V1Pod, facts: PodFacts, reason: string, message: string): PodAction[] {
  const status = failedStatus(hostPod, reason, message, {
    hostIP: facts.hostIP,
    now: new Date(facts.now).toISOString(),
  });
  const write = statusWrite(hostPod, facts, status);
  return write ? [{ kind: 'refuse', reason, message, write }] : [];
}

/** Pending with Spillway's condition saying why (and, with `waiting`, containers waiting for that reason). */
export function refuse(
  hostPod: V1Pod,
  facts: PodFacts,
  reason: string,
  message: string,
  waiting?: string,
): PodAction[] {
  let status = withVerdict(
    hostPod.status ?? {},
    { status: 'False', reason, message },
    new Date(facts.now).toISOString(),
  );
  if (waiting) {
    status = {
      ...status,
      containerStatuses: (hostPod.spec?.containers ?? []).map((c) => ({
        name: c.name,
        image: c.image ?? '',
        imageID: '',
        ready: false,
        restartCount: 0,
        started: false,
        state: { waiting: { reason: waiting, message } },
      })),
    };
  }
  const write = statusWrite(hostPod, facts, status);
  return write ? [{ kind: 'refuse', reason, message, write }] : [];
}

export function warning(reason: string, message: string): PodAction {
  return { kind: 'event', type: 'Warning', reason, message, once: true };
}

export function refOf(pod: V1Pod): ObjectRef {
  return {
    namespace: pod.metadata?.namespace ?? '',
    name: pod.metadata?.name ?? '',
    uid: pod.metadata?.uid ?? '',
  };
}

export function deleteDelegate(delegate: V1Pod, why: string, gracePeriodSeconds?: number): PodAction {
  return {
    kind: 'deleteDelegate',
    target: refOf(delegate),
    why,
    ...(gracePeriodSeconds !== undefined && gracePeriodSeconds !== null ? { gracePeriodSeconds } : {}),
  };
}

export function requeue(afterMs: number): PodAction {
  return { kind: 'requeue', afterMs };
}
