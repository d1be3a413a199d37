// What the virtual node refuses before any delegate exists, as a kubelet refuses a pod it cannot run:
// the host pod fails with a kubelet-like reason (so its controller replaces it and the scheduler places
// the replacement elsewhere) and an event says why. Pure, given the fit check.
import type { V1Pod } from '@kubernetes/client-node';
import type { ResourceList } from '../kube/quantity.ts';
import { podRequests } from '../node/capacity.ts';
import { describeRefusal, type FitRefusal } from '../node/fragmentation.ts';

export interface AdmissionOptions {
  readonly remoteName: string;
  readonly nodeName: string;
  /** DaemonSet pods tolerate every taint; they are meant for real nodes and refused unless allowed. */
  readonly allowDaemonSets: boolean;
  /** Whether some remote node can take these requests (see FragmentationGuard). */
  readonly fit: (requests: ResourceList) => FitRefusal | undefined;
}

export interface AdmissionRefusal {
  readonly reason: string;
  readonly message: string;
  /** Refused for lack of room on any remote node (the virtual node's capacity is capped meanwhile). */
  readonly forCapacity: boolean;
}

export function isDaemonSetPod(pod: V1Pod): boolean {
  return (pod.metadata?.ownerReferences ?? []).some((o) => o.kind === 'DaemonSet' && o.controller === true);
}

export function admissionRefusal(pod: V1Pod, options: AdmissionOptions): AdmissionRefusal | undefined {
  if (!options.allowDaemonSets && isDaemonSetPod(pod)) {
    return {
      reason: 'DaemonSetPodRefused',
      message:
        `Pod was rejected: DaemonSet pods do not run on virtual node ${options.nodeName} ` +
        `(remote cluster ${options.remoteName}); set pods.daemonSets: allow to run them there`,
      forCapacity: false,
    };
  }
  const refusal = options.fit(podRequests(pod.spec));
  if (refusal) {
    return {
      reason: `OutOf${refusal.resource}`,
      message: describeRefusal(refusal, options.remoteName),
      forCapacity: true,
    };
  }
  return undefined;
}
