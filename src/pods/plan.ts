// The whole reconcile ladder of one host pod, as one pure function: plan(hostPod, delegate, facts)
// returns the actions to take; the executor (execute.ts) only applies them, with their preconditions.
// Everything the ladder reads comes in `facts`: both caches' sync state, the remote's reachability,
// Spillway's memory of its own writes and of the remote's answers, the configuration. The ladder:
//
//   caches not synced        → wait (a host pod being deleted may still be released, see below)
//   host pod gone            → collect its delegate (an orphan)
//   delegate of a namesake   → delete that stale delegate (it is an earlier pod's), wait
//   host pod being deleted   → delete the delegate with the same grace; finalise the host pod once the
//                              delegate's fate is known: gone, or finished. While the remote is
//                              unreachable its fate is unknown and the host pod stays Terminating, as a
//                              partitioned kubelet's pods do, unless the virtual node carries the
//                              node.kubernetes.io/out-of-service taint (the operator declares the remote
//                              dead) or the release policy names the pod's controller kind.
//   host pod terminal        → never run it again (a delegate still running is stopped)
//   remote being removed     → delete the delegate; once it is gone, fail the host pod
//   remote unreachable       → nothing: the delegate cache is stale; statuses are written on return
//   no delegate              → create it, unless the pod cannot run (unsupported volume, admission,
//                              missing references, the remote's refusal), or it existed and vanished
//   delegate deleted remotely, not by Spillway → mirror it while it stops; once it is gone, fail the
//                              host pod with a reason (never while it may still run)
//   otherwise                → push allowed spec changes down, mirror status up, set the deletion cost
import type { V1Pod } from '@kubernetes/client-node';
import { LABEL_HOST_POD_UID } from '../ownership.ts';
import { ANNOTATION_DELETION_COST, delegateUpdate } from './forge.ts';
import { deleteDelegate, failWith, refOf, refuse, requeue, statusWrite, warning } from './plan-actions.ts';
import type { PodAction, PodFacts, PodPolicy } from './plan-facts.ts';
import {
  forCreate,
  liveChanges,
  maintain,
  podSecretBeforeCreate,
  podSecretCleanup,
  sooner,
  type WorkloadVerdict,
} from './plan-workload.ts';
import { CONDITION_DELEGATED, hostStatusFromDelegate, isTerminal, type Verdict } from './status.ts';

export { statusWrite } from './plan-actions.ts';
export type {
  ObjectRef,
  PodAction,
  PodFacts,
  PodPolicy,
  ReferenceCheck,
  StatusWrite,
} from './plan-facts.ts';

/** The taint of upstream non-graceful node shutdown: the operator says the node (here, the remote) is gone. */
export const TAINT_OUT_OF_SERVICE = 'node.kubernetes.io/out-of-service';
/** How long a delegate we created may stay invisible to our informer before we look again. */
export const CREATE_VISIBILITY_MS = 30_000;
/** Slack after a host pod's grace period before it counts as over. */
export const GRACE_SLACK_MS = 2_000;
/** The reason on host pods failed because their remote cluster was removed from the configuration. */
export const REASON_REMOTE_REMOVED = 'RemoteClusterRemoved';
/** Controller kinds that promise at most one pod per identity: never released while their fate is unknown. */
export const NEVER_RELEASED_KINDS: ReadonlySet<string> = new Set(['StatefulSet']);

/** Volume kinds a delegate cannot use: the claim or disk lives in the host cluster. */
const UNSUPPORTED_VOLUMES = ['persistentVolumeClaim', 'ephemeral'] as const;

/** A delete asked for this recently is not asked again (the delegate cache may not show it yet). */
export const DELETE_REPEAT_MS = 5_000;

export function plan(hostPod: V1Pod | undefined, delegate: V1Pod | undefined, facts: PodFacts): PodAction[] {
  return withoutRepeatedDeletes(ladder(hostPod, delegate, facts), hostPod, facts);
}

/**
 * Drops a delete (of a delegate, or the host pod's finalisation) asked for moments ago: the informer
 * may not show it yet, and asking again only earns a 404 or a conflict.
 */
function withoutRepeatedDeletes(
  actions: PodAction[],
  hostPod: V1Pod | undefined,
  facts: PodFacts,
): PodAction[] {
  let wait = 0;
  const kept = actions.filter((action) => {
    if (action.kind !== 'deleteDelegate' && action.kind !== 'finalize') return true;
    const uid = action.kind === 'finalize' ? hostPod?.metadata?.uid : action.target.uid;
    const askedAt = facts.deleteRequestedAt(uid);
    const since = askedAt === undefined ? Number.POSITIVE_INFINITY : facts.now - askedAt;
    // Forcing (grace 0) a delegate asked to go gracefully is a new request, not a repeat.
    if (since >= DELETE_REPEAT_MS || (action.kind === 'deleteDelegate' && action.gracePeriodSeconds === 0))
      return true;
    wait = Math.max(wait, DELETE_REPEAT_MS - since);
    return false;
  });
  if (wait > 0 && !kept.some((a) => a.kind === 'requeue')) kept.push(requeue(wait));
  return kept;
}

function ladder(hostPod: V1Pod | undefined, delegate: V1Pod | undefined, facts: PodFacts): PodAction[] {
  if (!facts.synced.hostPods) return [requeue(500)];
  if (!hostPod) return planOrphan(delegate, facts);
  const uid = hostPod.metadata?.uid ?? '';

  if (hostPod.metadata?.deletionTimestamp && !facts.synced.delegates && facts.remote === 'unreachable') {
    // Not one list of the remote since start (it has been unreachable): only a release can happen.
    return planDeletion(hostPod, undefined, facts, { delegateUnknown: true });
  }
  if (!facts.synced.delegates) return [requeue(1000)];

  if (delegate && delegate.metadata?.labels?.[LABEL_HOST_POD_UID] !== uid) {
    // An earlier pod of this name left its delegate: it goes first (nothing of ours is adopted by name).
    if (delegate.metadata?.deletionTimestamp || facts.remote === 'unreachable') return [requeue(1000)];
    return [deleteDelegate(delegate, 'it belongs to an earlier pod of this name', 0), requeue(1000)];
  }

  if (hostPod.metadata?.deletionTimestamp) return planDeletion(hostPod, delegate, facts);

  if (isTerminal(hostPod.status?.phase)) return planTerminal(delegate, facts);

  if (facts.mode === 'drain') return planDrain(hostPod, delegate, facts);

  // The delegate cache is stale while the remote cannot be reached: nothing is decided from it, and no
  // status is written from it (that would undo what the host's node lifecycle controller marks).
  if (facts.remote === 'unreachable') return [];

  if (!delegate) return planCreate(hostPod, facts);
  return planRunning(hostPod, delegate, facts);
}

function planOrphan(delegate: V1Pod | undefined, facts: PodFacts): PodAction[] {
  const actions: PodAction[] = [{ kind: 'forget' }];
  if (facts.remote === 'unreachable') return actions;
  if (delegate && !delegate.metadata?.deletionTimestamp) {
    actions.push(deleteDelegate(delegate, 'its host pod is gone'));
  }
  actions.push(...podSecretCleanup(facts, 'its host pod is gone'));
  return actions;
}

/** Whether a delegate may exist that the cache never showed: Spillway created it, or sent a create. */
function maybeCreated(facts: PodFacts): boolean {
  const { createdAt, attemptedAt, seen } = facts.recall;
  return !seen && (createdAt !== undefined || attemptedAt !== undefined);
}

/** A create sent so recently that the informer may not show its delegate yet. */
function createInFlight(facts: PodFacts): boolean {
  const { createdAt, attemptedAt, seen } = facts.recall;
  // Not yet visible: too recent, or sent after what the delegate cache is known to hold (its watch
  // was broken meanwhile): a delegate missing from the cache then may well exist.
  const pending = (at: number | undefined) =>
    at !== undefined && (facts.now - at < CREATE_VISIBILITY_MS || facts.delegatesCurrentThrough < at);
  return !seen && (pending(createdAt) || pending(attemptedAt));
}

function planDeletion(
  hostPod: V1Pod,
  delegate: V1Pod | undefined,
  facts: PodFacts,
  { delegateUnknown = false } = {},
): PodAction[] {
  const graceEnds = Date.parse(String(hostPod.metadata?.deletionTimestamp));
  const overdue = !(facts.now <= graceEnds + GRACE_SLACK_MS);
  const unreachable = facts.remote !== 'reachable';
  const fateUnknown = delegateUnknown || (unreachable && (delegate !== undefined || maybeCreated(facts)));

  if (!fateUnknown && !delegate) {
    // A delegate just created may not be in the cache yet: the host pod waits for it to be seen.
    if (createInFlight(facts)) return [requeue(1000)];
    return [{ kind: 'forget' }, { kind: 'finalize', why: 'its delegate is gone' }];
  }
  if (delegate && isTerminal(delegate.status?.phase)) {
    // Its containers have stopped: the fate is known, whatever the remote's reachability now.
    const actions: PodAction[] = [];
    if (!delegate.metadata?.deletionTimestamp && !unreachable) {
      actions.push(deleteDelegate(delegate, 'its host pod is being deleted and it has finished', 0));
    }
    actions.push({ kind: 'forget' }, { kind: 'finalize', why: 'its delegate has finished' });
    return actions;
  }
  const releasable = releasableKind(hostPod, facts.policy);
  if (fateUnknown) {
    if (facts.nodeOutOfService) {
      return [
        warning(
          'ReleasedOutOfService',
          `${unreachableSubject(facts)}; the virtual node is out of service (${TAINT_OUT_OF_SERVICE}), so the pod is released`,
        ),
        { kind: 'forget' },
        { kind: 'finalize', why: 'the virtual node is out of service' },
      ];
    }
    if (releasable && overdue) {
      return [
        warning(
          'ReleasedUnreachable',
          `${unreachableSubject(facts)}; released after its grace period by the release policy for ${releasable} pods`,
        ),
        { kind: 'forget' },
        { kind: 'finalize', why: `release policy for ${releasable} pods` },
      ];
    }
    return [
      {
        kind: 'event',
        type: 'Warning',
        reason: 'DelegateUnreachable',
        message: `${unreachableSubject(facts)}; the pod stays Terminating until the remote answers, or until the virtual node is tainted ${TAINT_OUT_OF_SERVICE}`,
        once: true,
      },
      requeue(overdue || !releasable ? 5000 : Math.max(100, graceEnds + GRACE_SLACK_MS - facts.now)),
    ];
  }

  // The remote answers: the delegate goes with the host pod's grace, and the host pod when it has gone.
  const live = delegate as V1Pod;
  const actions: PodAction[] = [];
  if (!live.metadata?.deletionTimestamp) {
    actions.push(
      deleteDelegate(live, 'its host pod is being deleted', hostPod.metadata?.deletionGracePeriodSeconds),
    );
  }
  if (facts.nodeOutOfService) {
    actions.push({ kind: 'forget' }, { kind: 'finalize', why: 'the virtual node is out of service' });
    return actions;
  }
  if (overdue) {
    if (releasable) {
      // A kind whose controller never promised at most one pod: the delegate is forced away.
      if (live.metadata?.deletionGracePeriodSeconds !== 0) {
        actions.push(deleteDelegate(live, 'the grace period is over', 0));
      }
    } else {
      actions.push({
        kind: 'event',
        type: 'Normal',
        reason: 'WaitingForDelegate',
        message: `delegate pod ${facts.delegateKey} in remote cluster ${facts.remoteName} is still terminating after the grace period; the host pod goes once it has`,
        once: true,
      });
    }
    actions.push(requeue(5000));
    return actions;
  }
  // The delegate's disappearance requeues the key; the timer is the grace period's backstop.
  actions.push(requeue(Math.max(100, graceEnds + GRACE_SLACK_MS - facts.now)));
  return actions;
}

function unreachableSubject(facts: PodFacts): string {
  return `remote cluster ${facts.remoteName} cannot be reached, so the fate of delegate pod ${facts.delegateKey} is unknown`;
}

/** The controller kind named in the release policy that owns this pod, if any (never StatefulSet, never a bare pod). */
export function releasableKind(pod: V1Pod, policy: PodPolicy): string | undefined {
  const owner = pod.metadata?.ownerReferences?.find((o) => o.controller === true);
  if (!owner || NEVER_RELEASED_KINDS.has(owner.kind)) return undefined;
  return policy.releaseKinds.has(owner.kind) ? owner.kind : undefined;
}

function planTerminal(delegate: V1Pod | undefined, facts: PodFacts): PodAction[] {
  // Done on the host: it never runs again. A delegate still running (the host pod was failed by
  // Spillway, e.g. unschedulable) is stopped; a finished one stays until the host pod is deleted,
  // or until the remote is removed.
  if (facts.mode === 'drain' && facts.remote === 'reachable' && !delegate) {
    return podSecretCleanup(facts, 'remote cluster is being removed');
  }
  if (!delegate || delegate.metadata?.deletionTimestamp || facts.remote === 'unreachable') return [];
  if (facts.mode === 'drain') return [deleteDelegate(delegate, 'remote cluster is being removed')];
  if (!isTerminal(delegate.status?.phase)) return [deleteDelegate(delegate, 'its host pod has finished')];
  return [];
}

function planDrain(hostPod: V1Pod, delegate: V1Pod | undefined, facts: PodFacts): PodAction[] {
  if (facts.remote !== 'reachable') return [requeue(5000)];
  if (delegate && !isTerminal(delegate.status?.phase)) {
    // The pod is failed only once its delegate has stopped: its replacement must not run beside it.
    if (delegate.metadata?.deletionTimestamp) return [requeue(1000)];
    return [deleteDelegate(delegate, 'remote cluster is being removed'), requeue(1000)];
  }
  if (!delegate && createInFlight(facts)) return [requeue(1000)];
  const message = `remote cluster ${facts.remoteName} was removed from Spillway's configuration; the pod's delegate was deleted`;
  return [
    ...podSecretCleanup(facts, 'remote cluster is being removed'),
    ...failWith(hostPod, facts, REASON_REMOTE_REMOVED, message),
  ];
}

function planCreate(hostPod: V1Pod, facts: PodFacts): PodAction[] {
  const { recall, now } = facts;
  if (createInFlight(facts)) return [requeue(5000)];
  const existedBefore = recall.createdAt !== undefined || delegatedCondition(hostPod)?.status === 'True';
  if (existedBefore) {
    const message = `delegate pod ${facts.delegateKey} was deleted in remote cluster ${facts.remoteName}, not by Spillway`;
    return failWith(hostPod, facts, 'DelegateDeleted', message);
  }

  const outcome = recall.outcome;
  if (outcome?.kind === 'rejected') {
    const message = `remote cluster ${facts.remoteName} rejected the delegate: ${outcome.message}`;
    return [...failWith(hostPod, facts, 'DelegateRejected', message), { kind: 'giveUp', message }];
  }
  if (outcome?.kind === 'nameTaken' && now - outcome.at < 30_000) {
    return [
      ...refuse(hostPod, facts, 'DelegateNameConflict', outcome.message),
      requeue(30_000 - (now - outcome.at)),
    ];
  }

  const policy = facts.namespacePolicy?.();
  if (policy) return planVerdict(hostPod, facts, policy);
  const volumes = facts.volumes ? facts.volumes() : unsupportedVolume(hostPod);
  if (volumes) return planVerdict(hostPod, facts, volumes);
  const refusal = facts.admission();
  if (refusal) {
    // The capped capacity goes out first: the replacement must not be scheduled here again.
    return [
      ...(refusal.forCapacity ? [{ kind: 'flushCapacity' } as const] : []),
      ...failWith(hostPod, facts, refusal.reason, refusal.message),
    ];
  }
  const check = facts.references();
  if (check.missing.length > 0) {
    const what = check.missing.map((r) => `${r.kind.toLowerCase()} "${r.name}" not found`).join(', ');
    // The object appearing requeues the pod at once; this is the backstop.
    return [
      ...refuse(hostPod, facts, 'MissingReference', what, 'CreateContainerConfigError'),
      requeue(60_000),
    ];
  }
  if (check.conflicts.length > 0) {
    return [...refuse(hostPod, facts, 'ReflectionConflict', check.conflicts.join('; ')), requeue(60_000)];
  }
  const actions: PodAction[] = [];
  if (outcome?.kind === 'forbidden') {
    // Admission policy or quota: may pass later (quota freed, policy changed); retried with back-off.
    const message = `remote cluster ${facts.remoteName} refused the delegate: ${outcome.message}`;
    actions.push(...refuse(hostPod, facts, 'DelegateForbidden', message));
    const backoff = Math.min(60_000, 1000 * 2 ** Math.min(outcome.attempts - 1, 6));
    if (now - outcome.at < backoff) return [...actions, requeue(backoff - (now - outcome.at))];
  }
  const secret = podSecretBeforeCreate(hostPod, facts);
  if (secret.blocked) return [...actions, ...planVerdict(hostPod, facts, secret.blocked)];
  actions.push(...secret.actions);
  if (secret.actions.some((a) => a.kind === 'deletePodSecret')) return [...actions, requeue(1000)];
  actions.push({
    kind: 'createDelegate',
    delegate: forCreate(facts.desired()),
    references: check.references,
  });
  return actions;
}

/** Claims refused outright, as before storage support (facts.volumes absent). */
function unsupportedVolume(hostPod: V1Pod): WorkloadVerdict | undefined {
  const unsupported = (hostPod.spec?.volumes ?? []).find((v) => UNSUPPORTED_VOLUMES.some((kind) => v[kind]));
  if (!unsupported) return undefined;
  return {
    reason: 'UnsupportedVolume',
    message: `volume "${unsupported.name}" needs storage of the host cluster, which a remote cluster cannot mount`,
    outcome: 'never',
  };
}

/** A pod that cannot run here: failed (replaced by its controller), or Pending until its cause is fixed. */
function planVerdict(hostPod: V1Pod, facts: PodFacts, verdict: WorkloadVerdict): PodAction[] {
  const { reason, message } = verdict;
  if (verdict.outcome === 'fail') return failWith(hostPod, facts, reason, message);
  if (verdict.outcome === 'never')
    return [...refuse(hostPod, facts, reason, message), { kind: 'giveUp', message }];
  return [
    ...refuse(hostPod, facts, reason, message),
    requeue(Math.max(1000, verdict.retryAfterMs ?? 60_000)),
  ];
}

function planRunning(hostPod: V1Pod, delegate: V1Pod, facts: PodFacts): PodAction[] {
  const actions: PodAction[] = [];
  const deletedRemotely =
    delegate.metadata?.deletionTimestamp !== undefined &&
    facts.deleteRequestedAt(delegate.metadata.uid) === undefined &&
    !isTerminal(delegate.status?.phase);
  if (deletedRemotely) {
    // Its containers may run on until the remote confirms them stopped (a remote node that is
    // unreachable keeps them Terminating): the host pod fails only once the delegate is gone
    // (planCreate), so that its replacement never runs beside it.
    const message = `delegate pod ${facts.delegateKey} is being deleted in remote cluster ${facts.remoteName}, not by Spillway; the pod fails once it has stopped`;
    actions.push(warning('DelegateTerminating', message));
  }
  const specActions = deletedRemotely ? [] : planSpec(hostPod, delegate, facts);
  actions.push(...specActions);
  // A finished delegate needs no fresh token; its host pod turns terminal with this status.
  const secret = isTerminal(delegate.status?.phase) ? undefined : facts.podSecret?.();
  const upkeep = secret ? maintain(hostPod, secret, facts) : { actions: [] };
  actions.push(...upkeep.actions);

  const scheduling = schedulingVerdict(delegate, facts);
  actions.push(...scheduling.notes);
  if (scheduling.fail) {
    return [
      ...actions,
      ...failWith(hostPod, facts, scheduling.fail.reason, scheduling.fail.message),
      deleteDelegate(delegate, 'the remote cannot schedule it'),
    ];
  }
  // A delegate that starts within the settle window gets one status write (Running), not two.
  const settling = settleRemaining(delegate, facts);
  if (settling > 0) return [...actions, requeue(settling)];

  const status = hostStatusFromDelegate(hostPod, delegate, scheduling.verdict, {
    hostIP: facts.hostIP,
    now: new Date(facts.now).toISOString(),
    delegateSpecCurrent: !specActions.some((a) => a.kind !== 'markSpecInSync'),
  });
  const write = statusWrite(hostPod, facts, status);
  if (write) actions.push({ kind: 'writeStatus', write });
  // After the status, which matters more to the pod's owner than its rank for a scale-down.
  const cost = deletionCost(hostPod, facts);
  if (cost !== undefined) actions.push({ kind: 'setDeletionCost', cost });
  const after = sooner(scheduling.requeueAfter, upkeep.requeueAfterMs);
  if (after !== undefined) actions.push(requeue(after));
  return actions;
}

/** The patch that carries allowed spec changes down, skipped (without forging) when nothing changed. */
function planSpec(hostPod: V1Pod, delegate: V1Pod, facts: PodFacts): PodAction[] {
  const host = hostPod.metadata?.resourceVersion ?? '';
  const remote = delegate.metadata?.resourceVersion ?? '';
  const known = facts.recall.specInSync;
  if (known?.host === host && known.delegate === remote) return [];
  const desired = facts.desired();
  const patch = delegateUpdate(desired, delegate);
  if (patch) return [{ kind: 'patchDelegate', target: refOf(delegate), resourceVersion: remote, patch }];
  // One change per reconcile: each moves the delegate's resourceVersion, the next one's precondition.
  const live = liveChanges(desired, delegate);
  return [live ?? { kind: 'markSpecInSync', host, delegate: remote }];
}

/** The remote scheduler's verdict on the delegate, with the unschedulable policy applied. */
function schedulingVerdict(
  delegate: V1Pod,
  facts: PodFacts,
): {
  verdict: Verdict;
  notes: PodAction[];
  requeueAfter?: number;
  fail?: { reason: string; message: string };
} {
  const where = `${facts.delegateKey} in remote cluster ${facts.remoteName}`;
  const scheduled = delegate.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    const since = facts.recall.unschedulableSince ?? facts.now;
    const notes: PodAction[] =
      facts.recall.unschedulableSince === undefined ? [{ kind: 'markUnschedulable', since }] : [];
    const waitedMs = facts.now - since;
    const { timeoutSeconds, policy } = facts.policy.unschedulable;
    const message = `the remote scheduler cannot place delegate ${where}: ${scheduled.message ?? 'no reason given'}`;
    const verdict: Verdict = { status: 'False', reason: 'RemoteUnschedulable', message };
    if (policy === 'fail' && waitedMs >= timeoutSeconds * 1000) {
      return {
        verdict,
        notes,
        fail: { reason: 'RemoteUnschedulable', message: `${message} (for ${Math.round(waitedMs / 1000)}s)` },
      };
    }
    return {
      verdict,
      notes,
      requeueAfter: policy === 'fail' ? Math.max(1000, timeoutSeconds * 1000 - waitedMs) : undefined,
    };
  }
  const notes: PodAction[] =
    facts.recall.unschedulableSince !== undefined ? [{ kind: 'clearUnschedulable' }] : [];
  return { verdict: { status: 'True', reason: 'DelegateCreated', message: `running as ${where}` }, notes };
}

/** Time left before a just-created, still-Pending delegate's status is worth writing (0: write now). */
function settleRemaining(delegate: V1Pod, facts: PodFacts): number {
  const createdAt = facts.recall.createdAt;
  if (delegate.status?.phase !== 'Pending' || facts.policy.statusSettleMs <= 0 || createdAt === undefined) {
    return 0;
  }
  return Math.max(0, createdAt + facts.policy.statusSettleMs - facts.now);
}

/** The cost to set on a ReplicaSet's pod (the only controller that reads it), unless it has one. */
function deletionCost(hostPod: V1Pod, facts: PodFacts): number | undefined {
  const { deletionCost: cost, deletionCostAllowed } = facts.policy;
  if (cost === null || !deletionCostAllowed || facts.recall.deletionCostSet) return undefined;
  const owner = hostPod.metadata?.ownerReferences?.find((o) => o.controller);
  if (owner?.kind !== 'ReplicaSet') return undefined;
  // Someone else's choice wins.
  if (hostPod.metadata?.annotations?.[ANNOTATION_DELETION_COST] !== undefined) return undefined;
  return cost;
}

function delegatedCondition(pod: V1Pod) {
  return pod.status?.conditions?.find((c) => c.type === CONDITION_DELEGATED);
}
