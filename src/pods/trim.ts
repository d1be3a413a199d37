// What the pod caches keep. At 10,000 pods a cache holds 10,000 host pods and 10,000 delegates, so
// every field kept costs 10,000 times: each side keeps what reconcile, status and the kubelet API
// read, and nothing else. A field read from a cached pod must be listed here first.
//
// Host pods: everything but managedFields and the host's service-account token volume (forge drops
// it from every delegate, and nothing else reads it). Delegates: identity, ownership labels and
// annotations, deletion, the spec fields Kubernetes lets change (delegateUpdate compares them), the
// node and container names (the kubelet API's metrics), and the status fields mirrored to the host.
// Both keep one copy of each short string (see kube/intern.ts).
import type {
  V1Container,
  V1ObjectMeta,
  V1Pod,
  V1PodSpec,
  V1PodStatus,
  V1Volume,
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
] as const satisfies readonly (keyof V1PodStatus)[];

function pick<T extends object, K extends keyof T>(source: T | undefined, keys: readonly K[]): Pick<T, K> {
  const result = {} as Pick<T, K>;
  if (!source) return result;
  for (const key of keys) if (source[key] !== undefined) result[key] = source[key];
  return result;
}

const nameAndImage = (containers: V1Container[] | undefined) =>
  containers?.map((c) => ({ name: c.name, image: c.image }) as V1Container);

export function trimDelegate(pod: V1Pod): V1Pod {
  const spec: V1PodSpec = {
    ...pick(pod.spec, DELEGATE_SPEC),
    containers: nameAndImage(pod.spec?.containers) ?? [],
  };
  const initContainers = nameAndImage(pod.spec?.initContainers);
  if (initContainers) spec.initContainers = initContainers;
  return cacheStrings.internAll({
    metadata: pick(pod.metadata, DELEGATE_METADATA),
    spec,
    status: pick(pod.status, DELEGATE_STATUS),
  });
}

const isTokenVolume = (volume: V1Volume) =>
  volume.projected?.sources?.some((s) => s.serviceAccountToken) === true;

export function trimHostPod(pod: V1Pod): V1Pod {
  const { managedFields: _managed, ...metadata } = pod.metadata ?? {};
  const spec = pod.spec;
  if (!spec?.volumes?.some(isTokenVolume)) return cacheStrings.internAll({ ...pod, metadata });
  const tokenVolumes = new Set(spec.volumes.filter(isTokenVolume).map((v) => v.name));
  const withoutMounts = (containers: V1Container[] | undefined) =>
    containers?.map((c) => {
      if (!c.volumeMounts?.some((m) => tokenVolumes.has(m.name))) return c;
      const volumeMounts = c.volumeMounts.filter((m) => !tokenVolumes.has(m.name));
      const { volumeMounts: _mounts, ...rest } = c;
      return volumeMounts.length > 0 ? { ...rest, volumeMounts } : rest;
    });
  const volumes = spec.volumes.filter((v) => !tokenVolumes.has(v.name));
  const trimmed: V1PodSpec = { ...spec, containers: withoutMounts(spec.containers) ?? [] };
  if (spec.initContainers) trimmed.initContainers = withoutMounts(spec.initContainers);
  if (volumes.length > 0) trimmed.volumes = volumes;
  else delete trimmed.volumes;
  return cacheStrings.internAll({ ...pod, metadata, spec: trimmed });
}
