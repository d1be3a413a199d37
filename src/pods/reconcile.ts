// reconcile(key) for one host pod: a level-based ladder that re-reads both caches each time.
//   host pod gone            → collect its delegate (an orphan)
//   delegate of a namesake   → delete that stale delegate, wait
//   host pod being deleted   → delete the delegate with the same grace, then finalise the host pod
//   host pod terminal        → never run it again
//   no delegate              → create one (or, if it existed and vanished, fail the host pod)
//   delegate deleted remotely without our asking → fail the host pod with a reason
//   otherwise                → push allowed spec changes down, mirror status up
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { messageOf } from '../kube/errors.ts';
import { LABEL_HOST_POD_UID } from '../ownership.ts';
import type { ReconcileResult } from '../queue/workqueue.ts';
import type { PodContext } from './context.ts';
import { delegateUpdate } from './forge.ts';
import {
  CONDITION_DELEGATED,
  failedStatus,
  hostStatusFromDelegate,
  isTerminal as isTerminalPhase,
  type Verdict,
} from './status.ts';
import type { PodWrites } from './writes.ts';

/** How long a delegate we created may stay invisible to our informer before we look again. */
const CREATE_VISIBILITY_MS = 30_000;
/** Slack after a host pod's grace period before Spillway forces the delegate away. */
const GRACE_SLACK_MS = 2_000;

export async function reconcilePod(
  key: string,
  context: PodContext,
  writes: PodWrites,
): Promise<ReconcileResult | undefined> {
  const { hostPods, delegates } = context;
  if (!hostPods.hasSynced || !delegates.hasSynced) return { requeueAfter: 500 };
  const hostPod = hostPods.get(key);
  const delegate = delegates.get(context.delegateKey(key));
  const log = context.logger.child({ pod: key });

  if (!hostPod) {
    context.reflector.release(key);
    context.memory.forget(key);
    if (delegate && !delegate.metadata?.deletionTimestamp) {
      log.info({ delegate: context.delegateKey(key) }, 'host pod is gone; deleting its delegate');
      await writes.deleteDelegate(delegate, undefined);
    }
    return undefined;
  }
  const uid = hostPod.metadata?.uid ?? '';

  if (delegate && delegate.metadata?.labels?.[LABEL_HOST_POD_UID] !== uid) {
    if (!delegate.metadata?.deletionTimestamp) {
      log.info('delegate belongs to an earlier pod of this name; deleting it first');
      await writes.deleteDelegate(delegate, 0);
    }
    return { requeueAfter: 1000 };
  }

  if (hostPod.metadata?.deletionTimestamp) return handleHostDeletion(hostPod, delegate, context, writes, log);

  if (isTerminalPhase(hostPod.status?.phase)) {
    // Done on the host: it never runs again. A delegate still running (the host pod was failed by
    // Spillway, e.g. unschedulable) is stopped; a finished one stays until the host pod is deleted.
    if (delegate && !isTerminalPhase(delegate.status?.phase) && !delegate.metadata?.deletionTimestamp) {
      await writes.deleteDelegate(delegate, undefined);
    }
    return undefined;
  }

  if (!delegate) {
    const created = context.memory.createdFor(key);
    if (created?.uid === uid && Date.now() - created.at < CREATE_VISIBILITY_MS) return { requeueAfter: 5000 };
    const existedBefore = created?.uid === uid || delegatedCondition(hostPod)?.status === 'True';
    if (existedBefore) {
      const message = `delegate pod ${context.delegateKey(key)} was deleted in remote cluster ${context.remoteName}, not by Spillway`;
      log.warn(message);
      await writes.writeHostStatus(
        hostPod,
        failedStatus(hostPod, 'DelegateDeleted', message, context.statusContext()),
      );
      await writes.event(hostPod, 'Warning', 'DelegateDeleted', message);
      return undefined;
    }
    const refusal = context.admit(hostPod);
    if (refusal) {
      log.info({ reason: refusal.reason }, refusal.message);
      // The capped capacity goes out first: the replacement must not be scheduled here again.
      if (refusal.forCapacity) await context.capacityRefused();
      await writes.writeHostStatus(
        hostPod,
        failedStatus(hostPod, refusal.reason, refusal.message, context.statusContext()),
      );
      await writes.event(hostPod, 'Warning', refusal.reason, refusal.message);
      return undefined;
    }
    return writes.createDelegate(hostPod, log);
  }

  if (delegate.metadata?.deletionTimestamp && !context.memory.deleteRequested(delegate.metadata.uid)) {
    if (!isTerminalPhase(delegate.status?.phase)) {
      const message = `delegate pod ${context.delegateKey(key)} is being deleted in remote cluster ${context.remoteName}, not by Spillway`;
      log.warn(message);
      await writes.writeHostStatus(
        hostPod,
        failedStatus(hostPod, 'DelegateDeleted', message, context.statusContext()),
      );
      await writes.event(hostPod, 'Warning', 'DelegateDeleted', message);
      return undefined;
    }
  }

  const patch = delegateUpdate(context.forge(hostPod), delegate);
  if (patch) await writes.patchDelegate(delegate, patch, log);
  const reflection = await writes.reflect(hostPod);
  if (reflection) return reflection;

  const { verdict, requeueAfter, fail } = schedulingVerdict(key, delegate, context);
  if (fail) {
    await writes.writeHostStatus(
      hostPod,
      failedStatus(hostPod, fail.reason, fail.message, context.statusContext()),
    );
    await writes.event(hostPod, 'Warning', fail.reason, fail.message);
    await writes.deleteDelegate(delegate, undefined);
    return undefined;
  }
  // A delegate that starts within the settle window gets one status write (Running), not two.
  const settling = settleRemaining(key, hostPod, delegate, context);
  if (settling > 0) return { requeueAfter: settling };
  await writes.writeHostStatus(
    hostPod,
    hostStatusFromDelegate(hostPod, delegate, verdict, context.statusContext()),
  );
  // After the status, which matters more to the pod's owner than its rank for a scale-down.
  await writes.deletionCost.ensure(hostPod);
  return requeueAfter !== undefined ? { requeueAfter } : undefined;
}

async function handleHostDeletion(
  hostPod: V1Pod,
  delegate: V1Pod | undefined,
  context: PodContext,
  writes: PodWrites,
  log: Logger,
): Promise<ReconcileResult | undefined> {
  const key = `${hostPod.metadata?.namespace}/${hostPod.metadata?.name}`;
  if (!delegate) {
    context.reflector.release(key);
    await writes.finalizeHostPod(hostPod);
    return undefined;
  }
  const graceEnds = Date.parse(String(hostPod.metadata?.deletionTimestamp));
  const overdue = Date.now() > graceEnds + GRACE_SLACK_MS;
  if (overdue || isTerminalPhase(delegate.status?.phase)) {
    // Nothing left to wait for: the delegate is done, or it outlived the grace the host allowed.
    if (overdue) log.info('grace period over; forcing the delegate away');
    try {
      await writes.deleteDelegate(delegate, 0);
    } catch (error) {
      if (!overdue) throw error;
      // The remote cannot be reached (an outage): the host pod is released all the same, so nothing
      // waits on it (a StatefulSet's replacement would); the delegate is then an orphan, collected
      // when the remote answers again.
      log.warn(
        { err: messageOf(error) },
        'cannot delete the delegate; releasing the host pod, collecting it later',
      );
    }
    context.reflector.release(key);
    await writes.finalizeHostPod(hostPod);
    return undefined;
  }
  if (!delegate.metadata?.deletionTimestamp) {
    await writes.deleteDelegate(delegate, hostPod.metadata?.deletionGracePeriodSeconds);
  }
  // The delegate's disappearance requeues the key; the timer is the grace period's backstop.
  return { requeueAfter: Math.max(100, graceEnds + GRACE_SLACK_MS - Date.now()) };
}

/** Time left before a just-created, still-Pending delegate's status is worth writing (0: write now). */
function settleRemaining(key: string, hostPod: V1Pod, delegate: V1Pod, context: PodContext): number {
  if (delegate.status?.phase !== 'Pending' || context.statusSettleMs <= 0) return 0;
  const created = context.memory.createdFor(key);
  if (!created || created.uid !== hostPod.metadata?.uid) return 0;
  return Math.max(0, created.at + context.statusSettleMs - Date.now());
}

function delegatedCondition(pod: V1Pod) {
  return pod.status?.conditions?.find((c) => c.type === CONDITION_DELEGATED);
}

/** Reads the remote scheduler's verdict on the delegate, applying the unschedulable policy. */
function schedulingVerdict(
  key: string,
  delegate: V1Pod,
  context: PodContext,
): { verdict: Verdict; requeueAfter?: number; fail?: { reason: string; message: string } } {
  const where = `${context.delegateKey(key)} in remote cluster ${context.remoteName}`;
  const scheduled = delegate.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    const since = context.memory.unschedulableSince(key);
    const waitedMs = Date.now() - since;
    const { timeoutSeconds, policy } = context.unschedulable;
    const message = `the remote scheduler cannot place delegate ${where}: ${scheduled.message ?? 'no reason given'}`;
    if (policy === 'fail' && waitedMs >= timeoutSeconds * 1000) {
      return {
        verdict: { status: 'False', reason: 'RemoteUnschedulable', message },
        fail: { reason: 'RemoteUnschedulable', message: `${message} (for ${Math.round(waitedMs / 1000)}s)` },
      };
    }
    return {
      verdict: { status: 'False', reason: 'RemoteUnschedulable', message },
      requeueAfter: policy === 'fail' ? Math.max(1000, timeoutSeconds * 1000 - waitedMs) : undefined,
    };
  }
  context.memory.clearUnschedulable(key);
  return { verdict: { status: 'True', reason: 'DelegateCreated', message: `running as ${where}` } };
}
