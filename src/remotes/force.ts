// Force removal of a remote that is gone for good: nothing is asked of the remote (it cannot answer,
// or its credentials are gone). The operator declares its delegates dead, as the out-of-service taint
// does for a node: the host pods of its virtual node are failed (Terminating ones released), so their
// controllers replace them, and the node is deleted. Whatever still runs in that remote is left there.
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { isConflict, isNotFound, messageOf } from '../kube/errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import { isOwnedBy } from '../node/forge.ts';
import { REASON_REMOTE_REMOVED } from '../pods/plan.ts';
import { failedStatus, isTerminal } from '../pods/status.ts';

export interface ForcedRemoval {
  readonly host: ClusterClient;
  readonly events: EventRecorder;
  readonly hostClusterName: string;
  readonly remoteName: string;
  readonly nodeName: string;
  readonly hostIP: string;
  readonly logger: Logger;
}

/** Fails every host pod of the node and deletes the node; retried until done or the signal aborts. */
export async function forceRemove(o: ForcedRemoval, signal: AbortSignal): Promise<void> {
  for (let attempt = 1; !signal.aborted; attempt++) {
    try {
      await forceRemoveOnce(o);
      return;
    } catch (error) {
      o.logger.warn({ node: o.nodeName, attempt, err: messageOf(error) }, 'force removal failed; retrying');
      await sleep(Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5)), undefined, { signal }).catch(() => {});
    }
  }
}

async function forceRemoveOnce(o: ForcedRemoval): Promise<void> {
  const node = await o.host.get<V1Node>(`/api/v1/nodes/${o.nodeName}`).catch((error: unknown) => {
    if (isNotFound(error)) return undefined;
    throw error;
  });
  if (node && !isOwnedBy(node, o.hostClusterName)) {
    o.logger.warn({ node: o.nodeName }, 'node is not this Spillway’s; force removal leaves it alone');
    return;
  }
  // One list for a one-off operation (not a reconcile): the pods bound to the node.
  const pods = await o.host.get<{ items: V1Pod[] }>('/api/v1/pods', {
    query: { fieldSelector: `spec.nodeName=${o.nodeName}` },
  });
  const message = `remote cluster ${o.remoteName} was force-removed from Spillway's configuration; whatever still runs there is no longer watched`;
  for (const pod of pods.items) {
    const path = `/api/v1/namespaces/${pod.metadata?.namespace}/pods/${pod.metadata?.name}`;
    try {
      if (pod.metadata?.deletionTimestamp) {
        await o.host.delete(path, { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata.uid } });
        continue;
      }
      if (isTerminal(pod.status?.phase)) continue;
      const status = failedStatus(pod, REASON_REMOTE_REMOVED, message, {
        hostIP: o.hostIP,
        now: new Date().toISOString(),
      });
      await o.host.patch(
        `${path}/status`,
        { metadata: { resourceVersion: pod.metadata?.resourceVersion }, status },
        'merge',
      );
      await o.events.record(
        {
          kind: 'Pod',
          name: pod.metadata?.name ?? '',
          namespace: pod.metadata?.namespace,
          uid: pod.metadata?.uid,
        },
        'Warning',
        REASON_REMOTE_REMOVED,
        message,
      );
    } catch (error) {
      // Gone meanwhile, or changed (the next attempt sees it as it is now).
      if (!isNotFound(error) && !isConflict(error)) throw error;
      if (isConflict(error)) throw new Error(`host pod ${path} changed; looking again`, { cause: error });
    }
  }
  if (node) {
    await o.host
      .delete(`/api/v1/nodes/${o.nodeName}`, { preconditions: { uid: node.metadata?.uid } })
      .catch((error: unknown) => {
        if (!isNotFound(error) && !isConflict(error)) throw error;
      });
    o.logger.info(
      { node: o.nodeName, pods: pods.items.length },
      'force-removed remote cluster: node deleted',
    );
  }
}
