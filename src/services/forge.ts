// Host Service in, remote Service and EndpointSlices out. Pure. The remote copy keeps the Service's
// name (what a delegate resolves: `svc`, `svc.ns`), ports, session affinity and headlessness, loses its
// cluster IPs (the remote allocates its own), node ports, load balancer and selector (a selector would
// pick the remote's pods; the endpoints are the host's), and gets one EndpointSlice per host slice,
// listing the endpoints the host sees ready, with their hostnames (so `pod.svc` resolves for headless
// Services). Whether a Service is reflected at all: the configuration's default, overridden by the
// namespace's spillway.dev/reflect-services annotation, overridden by the Service's spillway.dev/reflect.
import { isIP } from 'node:net';
import type { V1EndpointSlice, V1Service, V1ServiceSpec } from '@kubernetes/client-node';
import { ownershipLabels } from '../ownership.ts';
import { ANNOTATION_SOURCE, LABEL_REFLECTED } from '../pods/copies.ts';
import { type ReflectionScope, reflectedName } from '../pods/references.ts';
import { LABEL_SERVICE_NAME } from './host-services.ts';

export const ANNOTATION_REFLECT_SERVICES = 'spillway.dev/reflect-services';
export const ANNOTATION_REFLECT = 'spillway.dev/reflect';
/** Who manages a reflected slice: never the remote's EndpointSlice controller. */
export const SLICE_MANAGER = 'spillway.dev';
const LABEL_SLICE_MANAGED_BY = 'endpointslice.kubernetes.io/managed-by';

/** Whether a host Service is reflected: default, then the namespace's annotation, then the Service's. */
export function reflectionWanted(
  service: V1Service,
  namespaceAnnotations: Readonly<Record<string, string>>,
  enabledByDefault: boolean,
): boolean {
  // The host's own API Service means nothing remotely (the remote has one of that name).
  if (service.metadata?.namespace === 'default' && service.metadata?.name === 'kubernetes') return false;
  const own = service.metadata?.annotations?.[ANNOTATION_REFLECT];
  if (own === 'true' || own === 'false') return own === 'true';
  const namespace = namespaceAnnotations[ANNOTATION_REFLECT_SERVICES];
  if (namespace === 'true' || namespace === 'false') return namespace === 'true';
  return enabledByDefault;
}

export function isHeadless(service: V1Service | undefined): boolean {
  return service?.spec?.clusterIP === 'None';
}

function ownership(scope: ReflectionScope, kind: string): Record<string, string> {
  return { ...ownershipLabels(scope.hostClusterName, scope.nodeName), [LABEL_REFLECTED]: kind };
}

export function remoteService(
  service: V1Service,
  remoteNamespace: string,
  scope: ReflectionScope,
): V1Service {
  const spec = service.spec ?? {};
  const external = spec.type === 'ExternalName';
  const remoteSpec: V1ServiceSpec = {
    type: external ? 'ExternalName' : 'ClusterIP',
    ...(external ? { externalName: spec.externalName } : {}),
    ...(isHeadless(service) ? { clusterIP: 'None' } : {}),
    ports: (spec.ports ?? []).map(({ nodePort: _node, ...port }) => port),
    ...(spec.sessionAffinity ? { sessionAffinity: spec.sessionAffinity } : {}),
    ...(spec.sessionAffinityConfig ? { sessionAffinityConfig: spec.sessionAffinityConfig } : {}),
    ...(spec.publishNotReadyAddresses ? { publishNotReadyAddresses: true } : {}),
    ...(spec.internalTrafficPolicy ? { internalTrafficPolicy: spec.internalTrafficPolicy } : {}),
    ...(spec.trafficDistribution ? { trafficDistribution: spec.trafficDistribution } : {}),
  };
  if (remoteSpec.ports?.length === 0) delete remoteSpec.ports;
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(service.metadata?.labels ?? {})) {
    if (!key.startsWith('spillway.dev/')) labels[key] = value;
  }
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: service.metadata?.name,
      namespace: remoteNamespace,
      labels: { ...labels, ...ownership(scope, 'Service') },
      annotations: { [ANNOTATION_SOURCE]: `${service.metadata?.namespace}/${service.metadata?.name}` },
    },
    spec: remoteSpec,
  };
}

/** An address a remote EndpointSlice can hold (the API refuses loopback and link-local ones). */
function routable(address: string): boolean {
  if (isIP(address) === 4) return !/^(127\.|169\.254\.|0\.)/.test(address);
  if (isIP(address) === 6) return !/^(::1$|fe[89ab][0-9a-f]:)/i.test(address);
  return true; // FQDN slices
}

/** The remote copy of one host slice: its ready endpoints (all of them if the Service publishes not-ready ones). */
export function remoteSlice(
  slice: V1EndpointSlice,
  service: V1Service,
  remoteNamespace: string,
  scope: ReflectionScope,
): V1EndpointSlice {
  const publishAll = service.spec?.publishNotReadyAddresses === true;
  const endpoints = (slice.endpoints ?? [])
    .filter((e) => publishAll || e.conditions?.ready !== false)
    .map((e) => ({
      addresses: e.addresses.filter(routable),
      conditions: {
        ready: e.conditions?.ready ?? true,
        ...(e.conditions?.serving !== undefined ? { serving: e.conditions.serving } : {}),
        ...(e.conditions?.terminating !== undefined ? { terminating: e.conditions.terminating } : {}),
      },
      ...(e.hostname ? { hostname: e.hostname } : {}),
    }))
    .filter((e) => e.addresses.length > 0);
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: reflectedName(slice.metadata?.name ?? '', scope),
      namespace: remoteNamespace,
      labels: {
        [LABEL_SERVICE_NAME]: service.metadata?.name ?? '',
        [LABEL_SLICE_MANAGED_BY]: SLICE_MANAGER,
        ...ownership(scope, 'EndpointSlice'),
      },
      annotations: { [ANNOTATION_SOURCE]: `${slice.metadata?.namespace}/${slice.metadata?.name}` },
    },
    addressType: slice.addressType,
    endpoints,
    ...(slice.ports ? { ports: slice.ports } : {}),
  };
}

/** Whether the remote copy already says what we would write (ownership marks, spec or endpoints). */
export function sameService(current: V1Service, desired: V1Service): boolean {
  const labels = desired.metadata?.labels ?? {};
  if (Object.entries(labels).some(([k, v]) => current.metadata?.labels?.[k] !== v)) return false;
  const spec = current.spec ?? {};
  const want = desired.spec ?? {};
  const ports = (list: V1ServiceSpec['ports']) =>
    JSON.stringify(
      (list ?? []).map((p) => [
        p.name ?? '',
        p.port,
        p.protocol ?? 'TCP',
        String(p.targetPort ?? p.port),
        p.appProtocol ?? '',
      ]),
    );
  return (
    (spec.type ?? 'ClusterIP') === (want.type ?? 'ClusterIP') &&
    (spec.externalName ?? '') === (want.externalName ?? '') &&
    isHeadless(current) === isHeadless(desired) &&
    ports(spec.ports) === ports(want.ports) &&
    (spec.sessionAffinity ?? 'None') === (want.sessionAffinity ?? 'None') &&
    Boolean(spec.publishNotReadyAddresses) === Boolean(want.publishNotReadyAddresses) &&
    !spec.selector
  );
}

export function sameSlice(current: V1EndpointSlice, desired: V1EndpointSlice): boolean {
  const labels = desired.metadata?.labels ?? {};
  if (Object.entries(labels).some(([k, v]) => current.metadata?.labels?.[k] !== v)) return false;
  const endpoints = (slice: V1EndpointSlice) =>
    JSON.stringify(
      (slice.endpoints ?? []).map((e) => [
        e.addresses,
        e.conditions?.ready ?? true,
        e.conditions?.serving ?? null,
        e.conditions?.terminating ?? null,
        e.hostname ?? '',
      ]),
    );
  const ports = (slice: V1EndpointSlice) =>
    JSON.stringify(
      (slice.ports ?? []).map((p) => [
        p.name ?? '',
        p.port ?? null,
        p.protocol ?? 'TCP',
        p.appProtocol ?? '',
      ]),
    );
  return (
    current.addressType === desired.addressType &&
    endpoints(current) === endpoints(desired) &&
    ports(current) === ports(desired)
  );
}
