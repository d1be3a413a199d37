// Scale-down removes remote replicas first: every pod Spillway mirrors carries a low
// controller.kubernetes.io/pod-deletion-cost, which a ReplicaSet reads to pick whom to delete.
import type { V1Pod } from '@kubernetes/client-node';
import type { ClusterClient } from '../kube/client.ts';
import { isConflict, isNotFound, messageOf, statusCodeOf } from '../kube/errors.ts';
import type { PodContext } from './context.ts';
import { ANNOTATION_DELETION_COST } from './forge.ts';

const keyOf = (pod: V1Pod) => `${pod.metadata?.namespace}/${pod.metadata?.name}`;

export class DeletionCostMarker {
  private readonly host: ClusterClient;
  private readonly context: PodContext;
  private forbidden = false;

  constructor(host: ClusterClient, context: PodContext) {
    this.host = host;
    this.context = context;
  }

  /**
   * Sets the cost on a ReplicaSet's pod (the only controller that reads it) unless the pod has one
   * (someone else's choice wins). Returns whether it wrote.
   */
  async ensure(hostPod: V1Pod): Promise<boolean> {
    const cost = this.context.deletionCost;
    const uid = hostPod.metadata?.uid ?? '';
    if (cost === null || this.forbidden) return false;
    const owner = hostPod.metadata?.ownerReferences?.find((o) => o.controller);
    if (owner?.kind !== 'ReplicaSet') return false;
    if (hostPod.metadata?.annotations?.[ANNOTATION_DELETION_COST] !== undefined) return false;
    if (!this.context.memory.rememberDeletionCost(keyOf(hostPod), uid)) return false;
    try {
      await this.host.patch(
        `/api/v1/namespaces/${hostPod.metadata?.namespace}/pods/${hostPod.metadata?.name}`,
        // The UID makes it a precondition: never a namesake's annotation.
        { metadata: { uid, annotations: { [ANNOTATION_DELETION_COST]: String(cost) } } },
        'merge',
      );
      return true;
    } catch (error) {
      this.context.memory.forgetDeletionCost(keyOf(hostPod));
      if (isNotFound(error) || isConflict(error)) return false;
      if (statusCodeOf(error) === 403) {
        // Older RBAC without pods: patch. Mirroring goes on; only the ranking is lost, said once.
        this.forbidden = true;
        this.context.logger.warn(
          { err: messageOf(error) },
          'not allowed to patch host pods: pod-deletion-cost is not set (grant pods: patch, or set pods.deletionCost: null)',
        );
        return false;
      }
      throw new Error(`setting the deletion cost of host pod ${keyOf(hostPod)}`, { cause: error });
    }
  }
}
