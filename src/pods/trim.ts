// What the pod caches keep. At 10,000 pods a cache holds 10,000 host pods and 10,000 delegates, so
// every field kept costs 10,000 times: each side keeps what reconcile, status and the kubelet API
// read, and nothing else. A field read from a cached pod must be listed here first.
//
// Host pods: everything but managedFields (the service-account token volumes too: a delegate with the
// host's API gets tokens of their audience and lifetime at their paths). Delegates: identity and
// generation, ownership labels and annotations, deletion, the spec fields Kubernetes lets change
// (delegateUpdate compares them; container resources for resizes, ephemeral container names for
// `kubectl debug`), the node and container names (the kubelet API's metrics), and the status fields
// mirrored to the host.
// Both keep one copy of each short string (see kube/intern.ts).
import type {
  V1Container,
  V1EphemeralContainer,
  V1ObjectMeta,
  V1Pod,
  V1PodSpec,
  V1PodStatus,
} from '@kubernetes/client-node';
import { cacheStrings } from '../kube/intern.ts';

const DELEGATE_METADATA = [
  'name',
  'namespace',
  'uid',
  'resourceVersion',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'generation',
  'labels',
  'annotations',
] as const satisfies readonly (keyof V1ObjectMeta)[];

const DELEGATE_SPEC = [
  'nodeName',
  'activeDeadlineSeconds',
  'tolerations',
] as const satisfies readonly (keyof V1PodSpec)[];

/** Status fields status.ts mirrors to the host (and the kubelet API's container start times). */
const DELEGATE_STATUS = [
  'phase',
  'conditions',
  'reason',
  'message',
  'podIP',
  'podIPs',
  'startTime',
  'containerStatuses',
  'initContainerStatuses',
  'ephemeralContainerStatuses',
  'observedGeneration',
  'resize',
  'allocatedResources',
  'resources',
] as const satisfies readonly (keyof V1PodStatus)[];

function pick<T extends object, K extends keyof T>(source: T | undefined, keys: readonly K[]): Pick<T, K> {
  const result = {} as Pick<T, K>;
  if (!source) return result;
  for (const key of keys) if (source[key] !== undefined) result[key] = source[key];
  return result;
}

/** Name and image (delegateUpdate), resources and restart policy (resizes of containers and sidecars). */
const nameAndImage = (containers: V1Container[] | undefined) =>
  containers?.map((c) => {
    const kept = { name: c.name, image: c.image } as V1Container;
    if (c.resources?.requests || c.resources?.limits) kept.resources = c.resources;
    if (c.restartPolicy) kept.restartPolicy = c.restartPolicy;
    return kept;
  });

export function trimDelegate(pod: V1Pod): V1Pod {
  const spec: V1PodSpec = {
    ...pick(pod.spec, DELEGATE_SPEC),
    containers: nameAndImage(pod.spec?.containers) ?? [],
  };
  const initContainers = nameAndImage(pod.spec?.initContainers);
  if (initContainers) spec.initContainers = initContainers;
  // Only their names: they are added, never changed.
  const ephemeral = pod.spec?.ephemeralContainers?.map((c) => ({ name: c.name }) as V1EphemeralContainer);
  if (ephemeral) spec.ephemeralContainers = ephemeral;
  return cacheStrings.internAll({
    metadata: pick(pod.metadata, DELEGATE_METADATA),
    spec,
    status: pick(pod.status, DELEGATE_STATUS),
  });
}

export function trimHostPod(pod: V1Pod): V1Pod {
  const { managedFields: _managed, ...metadata } = pod.metadata ?? {};
  return cacheStrings.internAll({ ...pod, metadata });
}
