// The host cluster's Services and EndpointSlices, watched once per host client and shared by every
// remote's Service reflector: each Service kept without its managedFields and last-applied annotation,
// each EndpointSlice trimmed to what a reflected slice carries (addresses, conditions, hostname,
// ports), indexed by the Service it belongs to.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { Informer, type InformerEvent, keyOf } from '../kube/informer.ts';

export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

export type HostServiceListener = (serviceKey: string, event: InformerEvent) => void;

export class HostServices {
  private readonly services: Informer<V1Service>;
  private readonly slices: Informer<V1EndpointSlice>;
  /** Service key (namespace/name) → keys of its EndpointSlices. */
  private readonly slicesByService = new Map<string, Set<string>>();
  private readonly listeners = new Set<HostServiceListener>();
  private started = false;

  constructor(options: { host: ClusterClient; logger: Logger }) {
    this.services = new Informer<V1Service>({
      name: 'host/services',
      client: options.host,
      path: '/api/v1/services',
      transform: trimService,
      logger: options.logger,
    });
    this.slices = new Informer<V1EndpointSlice>({
      name: 'host/endpointslices',
      client: options.host,
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      // Slices of no Service (a user's own) are of no use here.
      filter: (slice) => Boolean(slice.metadata?.labels?.[LABEL_SERVICE_NAME]),
      transform: trimSlice,
      logger: options.logger,
    });
    this.services.on((event, service) => this.emit(keyOf(service), event));
    this.slices.on((event, slice, previous) => {
      const key = keyOf(slice);
      const before = previous ? serviceKeyOf(previous) : undefined;
      const after = serviceKeyOf(slice);
      if (before && (before !== after || event === 'delete')) this.slicesByService.get(before)?.delete(key);
      if (event !== 'delete' && after) {
        let keys = this.slicesByService.get(after);
        if (!keys) {
          keys = new Set();
          this.slicesByService.set(after, keys);
        }
        keys.add(key);
      }
      if (before && before !== after) this.emit(before, 'update');
      if (after) this.emit(after, 'update');
    });
  }

  start(signal: AbortSignal): void {
    if (this.started) return;
    this.started = true;
    this.services.start(signal);
    this.slices.start(signal);
  }

  get synced(): boolean {
    return this.services.hasSynced && this.slices.hasSynced;
  }

  service(key: string): V1Service | undefined {
    return this.services.get(key);
  }

  /** The Services of one host namespace. */
  servicesIn(namespace: string): V1Service[] {
    return this.services.list().filter((s) => s.metadata?.namespace === namespace);
  }

  slicesOf(serviceKey: string): V1EndpointSlice[] {
    return [...(this.slicesByService.get(serviceKey) ?? [])]
      .map((key) => this.slices.get(key))
      .filter((s): s is V1EndpointSlice => s !== undefined);
  }

  /** Called with the Service's key when it or one of its slices changes; returns the unsubscribe function. */
  subscribe(listener: HostServiceListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(key: string, event: InformerEvent): void {
    for (const listener of this.listeners) listener(key, event);
  }
}

function serviceKeyOf(slice: V1EndpointSlice): string | undefined {
  const name = slice.metadata?.labels?.[LABEL_SERVICE_NAME];
  return name ? `${slice.metadata?.namespace}/${name}` : undefined;
}

function trimService(service: V1Service): V1Service {
  const { managedFields: _managed, ...metadata } = service.metadata ?? {};
  if (metadata.annotations?.[LAST_APPLIED] !== undefined) {
    const { [LAST_APPLIED]: _applied, ...annotations } = metadata.annotations;
    metadata.annotations = annotations;
  }
  return { metadata, spec: service.spec };
}

function trimSlice(slice: V1EndpointSlice): V1EndpointSlice {
  return {
    metadata: {
      name: slice.metadata?.name,
      namespace: slice.metadata?.namespace,
      uid: slice.metadata?.uid,
      resourceVersion: slice.metadata?.resourceVersion,
      labels: { [LABEL_SERVICE_NAME]: slice.metadata?.labels?.[LABEL_SERVICE_NAME] ?? '' },
    },
    addressType: slice.addressType,
    endpoints: (slice.endpoints ?? []).map((e) => ({
      addresses: e.addresses,
      conditions: e.conditions,
      ...(e.hostname ? { hostname: e.hostname } : {}),
    })),
    ...(slice.ports ? { ports: slice.ports } : {}),
  };
}
