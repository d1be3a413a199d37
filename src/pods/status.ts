// Delegate status in, host status out. Pure. The host pod shows what runs remotely (phase, container
// states, restarts, exit codes, IPs, start time) with the virtual node as its host, keeps what belongs
// to the host (its PodScheduled, conditions other controllers set, its QoS class), evaluates its own
// readiness gates, and never leaves a terminal phase.
import type { V1ContainerStatus, V1Pod, V1PodCondition, V1PodStatus } from '@kubernetes/client-node';

/** Spillway's own condition on host pods: the story of the delegate, readable in `kubectl describe`. */
export const CONDITION_DELEGATED = 'spillway.dev/Delegated';

/** Conditions the delegate's kubelet decides; every other host condition is kept as it is. */
const MIRRORED_CONDITIONS = new Set([
  'Initialized',
  'ContainersReady',
  'Ready',
  'PodReadyToStartContainers',
  'DisruptionTarget',
]);

export interface Verdict {
  /** Status of the spillway.dev/Delegated condition. */
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
}

export function isTerminal(phase: string | undefined): boolean {
  return phase === 'Succeeded' || phase === 'Failed';
}

type Condition = Omit<V1PodCondition, 'lastTransitionTime' | 'lastProbeTime'> & {
  lastTransitionTime?: string | Date;
  lastProbeTime?: string | Date | null;
};

function setCondition(conditions: Condition[], next: Condition, now: string): void {
  const index = conditions.findIndex((c) => c.type === next.type);
  const previous = conditions[index];
  const unchanged = previous && previous.status === next.status;
  const merged = {
    ...next,
    lastTransitionTime: unchanged ? previous.lastTransitionTime : (next.lastTransitionTime ?? now),
  };
  if (index >= 0) conditions[index] = merged;
  else conditions.push(merged);
}

/** Ready on the host needs the delegate Ready and every readiness gate of the host pod True. */
function applyReadinessGates(hostPod: V1Pod, conditions: Condition[], now: string): void {
  const gates = hostPod.spec?.readinessGates ?? [];
  if (gates.length === 0) return;
  const ready = conditions.find((c) => c.type === 'Ready');
  if (ready?.status !== 'True') return;
  const missing = gates.filter((g) => conditions.find((c) => c.type === g.conditionType)?.status !== 'True');
  if (missing.length > 0) {
    setCondition(
      conditions,
      {
        type: 'Ready',
        status: 'False',
        reason: 'ReadinessGatesNotReady',
        message: `corresponding condition of pod readiness gate "${missing[0]?.conditionType}" does not exist.`,
      },
      now,
    );
  }
}

export interface StatusContext {
  /** The virtual node's address: the host IP of every mirrored pod. */
  readonly hostIP: string;
  readonly now: string;
}

/** The host status for a host pod whose delegate exists; `verdict` fills the spillway.dev/Delegated condition. */
export function hostStatusFromDelegate(
  hostPod: V1Pod,
  delegate: V1Pod,
  verdict: Verdict,
  context: StatusContext,
): V1PodStatus {
  const host = hostPod.status ?? {};
  const remote = delegate.status ?? {};
  // A terminal host pod stays as it is: no mirrored state can bring it back.
  if (isTerminal(host.phase)) return withVerdict(host, verdict, context.now);

  // A stable order (the host's own conditions, the mirrored ones, Spillway's last), so an unchanged
  // status compares equal and costs no write.
  const previous = (host.conditions ?? []) as Condition[];
  const conditions: Condition[] = previous.filter(
    (c) => !MIRRORED_CONDITIONS.has(c.type) && c.type !== CONDITION_DELEGATED,
  );
  for (const condition of (remote.conditions ?? []) as Condition[]) {
    if (MIRRORED_CONDITIONS.has(condition.type)) conditions.push({ ...condition });
  }
  applyReadinessGates(hostPod, conditions, context.now);
  const delegated = previous.find((c) => c.type === CONDITION_DELEGATED);
  conditions.push(...(delegated ? [delegated] : []));
  setCondition(conditions, { type: CONDITION_DELEGATED, ...verdict }, context.now);

  const status: V1PodStatus = {
    ...host,
    phase: remote.phase ?? 'Pending',
    conditions: conditions as V1PodCondition[],
    hostIP: context.hostIP,
    hostIPs: [{ ip: context.hostIP }],
    containerStatuses: remote.containerStatuses,
    initContainerStatuses: remote.initContainerStatuses,
  };
  for (const field of ['podIP', 'podIPs', 'startTime', 'reason', 'message'] as const) {
    if (remote[field] !== undefined) (status as Record<string, unknown>)[field] = remote[field];
    else delete status[field];
  }
  if (!status.containerStatuses) delete status.containerStatuses;
  if (!status.initContainerStatuses) delete status.initContainerStatuses;
  return status;
}

/** Only Spillway's condition changes: used while there is no delegate, or for a terminal pod. */
export function withVerdict(host: V1PodStatus, verdict: Verdict, now: string): V1PodStatus {
  const conditions = [...((host.conditions ?? []) as Condition[])];
  setCondition(conditions, { type: CONDITION_DELEGATED, ...verdict }, now);
  return { ...host, conditions: conditions as V1PodCondition[] };
}

/**
 * A host pod whose delegate went away without Spillway asking (deleted or evicted in the remote):
 * Failed with a reason, containers terminated, so its controller replaces it. Never re-created.
 */
export function failedStatus(
  hostPod: V1Pod,
  reason: string,
  message: string,
  context: StatusContext,
): V1PodStatus {
  const host = hostPod.status ?? {};
  const terminated = (
    statuses: V1ContainerStatus[] | undefined,
    containers: { name: string; image?: string }[] | undefined,
  ) =>
    (containers ?? []).map((container) => {
      const previous = statuses?.find((s) => s.name === container.name);
      const state = previous?.state?.terminated
        ? previous.state
        : { terminated: { exitCode: 137, reason, message, finishedAt: context.now as unknown as Date } };
      return {
        name: container.name,
        image: previous?.image ?? container.image ?? '',
        imageID: previous?.imageID ?? '',
        ready: false,
        restartCount: previous?.restartCount ?? 0,
        started: false,
        state,
        ...(previous?.containerID ? { containerID: previous.containerID } : {}),
      } as V1ContainerStatus;
    });
  const conditions: Condition[] = [...((host.conditions ?? []) as Condition[])];
  for (const type of ['Ready', 'ContainersReady']) {
    setCondition(conditions, { type, status: 'False', reason: 'PodFailed', message }, context.now);
  }
  setCondition(conditions, { type: CONDITION_DELEGATED, status: 'False', reason, message }, context.now);
  return {
    ...host,
    phase: 'Failed',
    reason,
    message,
    conditions: conditions as V1PodCondition[],
    containerStatuses: terminated(host.containerStatuses, hostPod.spec?.containers),
    ...(hostPod.spec?.initContainers?.length
      ? { initContainerStatuses: terminated(host.initContainerStatuses, hostPod.spec.initContainers) }
      : {}),
  };
}

/** Compares two statuses the way the API server stores them (Dates and strings alike), ignoring key order. */
export function statusesEqual(a: V1PodStatus | undefined, b: V1PodStatus | undefined): boolean {
  return canonical(a) === canonical(b);
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Date) return v.toISOString().replace(/\.\d{3}Z$/, 'Z');
    if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/.test(v))
      return v.replace(/\.\d+Z$/, 'Z');
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(
        Object.entries(v as Record<string, unknown>)
          .filter(([, x]) => x !== undefined && x !== null)
          .sort(([x], [y]) => x.localeCompare(y)),
      );
    }
    return v;
  });
}
