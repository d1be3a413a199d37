// Services across clusters, for one virtual node: the Services of every host namespace that has pods on
// the node are reflected into its remote namespace (see forge.ts), with EndpointSlices listing the
// endpoints the host sees ready, so a delegate resolves and reaches `svc.ns` by name wherever the
// networks are routable. Keyed by host Service, reconciled whenever either side changes: host edits and
// endpoint changes are carried over, a copy edited or deleted remotely is restored, and copies go
// (after a short linger) once no pod of the namespace is on the node, at once when the host Service goes
// or opts out. The writes, with their preconditions and conflicts, are copies.ts's.
import type { V1EndpointSlice, V1Pod, V1Service } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import type { EventRecorder } from '../kube/events.ts';
import { Informer, type InformerEvent, keyOf, trimMetadata } from '../kube/informer.ts';
import type { HostNamespaces } from '../namespaces/host-namespaces.ts';
import { LABEL_VIRTUAL_NODE, ownedSelector } from '../ownership.ts';
import { ANNOTATION_SOURCE, LABEL_REFLECTED } from '../pods/copies.ts';
import type { NamespaceEnsurer } from '../pods/execute.ts';
import type { ReflectionScope } from '../pods/references.ts';
import { WorkQueue } from '../queue/workqueue.ts';
import { RemoteCopies, SLICES } from './copies.ts';
import { reflectionWanted, remoteService, remoteSlice } from './forge.ts';
import { type HostServices, LABEL_SERVICE_NAME } from './host-services.ts';

/** Copies stay this long after the namespace's last pod left the node (a rolling update: pods come back). */
const LINGER_MS = 5_000;

export interface ServiceReflectorOptions {
  readonly remote: ClusterClient;
  readonly hostServices: HostServices;
  readonly hostNamespaces: HostNamespaces;
  readonly namespaces: NamespaceEnsurer;
  readonly remoteNamespace: (hostNamespace: string) => string;
  readonly scope: ReflectionScope;
  /** services.enabled: the default for namespaces and Services without an annotation. */
  readonly enabled: boolean;
  readonly events: EventRecorder;
  readonly logger: Logger;
  /** The node's host pods have been listed once: which namespaces are in use is known. */
  readonly usersKnown: () => boolean;
}

export class ServiceReflector {
  private readonly options: ServiceReflectorOptions;
  private readonly services: Informer<V1Service>;
  private readonly slices: Informer<V1EndpointSlice>;
  private readonly queue: WorkQueue;
  /** Host namespace → keys of this node's host pods in it. */
  private readonly usage = new Map<string, Set<string>>();
  private readonly unusedSince = new Map<string, number>();
  private readonly copies: RemoteCopies;
  /** Host Service key → this node's copies standing for it (Services and slices). */
  private readonly bySource = new Map<string, Set<V1Service | V1EndpointSlice>>();
  private mode: 'run' | 'drain' = 'run';

  constructor(options: ServiceReflectorOptions) {
    this.options = options;
    const { remote, scope, logger } = options;
    const informer = <T extends V1Service | V1EndpointSlice>(kind: string, path: string) => {
      const cache = new Informer<T>({
        name: `${remote.name}/${kind.toLowerCase()}-copies/${scope.nodeName}`,
        client: remote,
        path,
        // Every virtual node's copies of this host cluster: a Service another node reflects is left to it.
        labelSelector: `${ownedSelector(scope.hostClusterName)},${LABEL_REFLECTED}=${kind}`,
        transform: trimMetadata,
        logger,
      });
      cache.on((event, copy, previous) => {
        const before = previous ? sourceServiceKey(previous) : undefined;
        if (previous && before) this.bySource.get(before)?.delete(previous);
        const key = sourceServiceKey(copy);
        if (key && event !== 'delete' && copy.metadata?.labels?.[LABEL_VIRTUAL_NODE] === scope.nodeName) {
          let copies = this.bySource.get(key);
          if (!copies) {
            copies = new Set();
            this.bySource.set(key, copies);
          }
          copies.add(copy);
        }
        if (before && this.bySource.get(before)?.size === 0) this.bySource.delete(before);
        if (key) this.queue.add(key);
      });
      return cache;
    };
    this.services = informer<V1Service>('Service', '/api/v1/services');
    this.slices = informer<V1EndpointSlice>('EndpointSlice', `${SLICES}/endpointslices`);
    this.copies = new RemoteCopies({ ...options, services: this.services, slices: this.slices });
    this.queue = new WorkQueue({
      name: `services/${scope.nodeName}`,
      workers: 2,
      logger,
      reconcile: (key) => this.reconcile(key),
    });
  }

  start(signal: AbortSignal): void {
    this.services.start(signal);
    this.slices.start(signal);
    this.queue.start(signal);
    const services = this.options.hostServices.subscribe((key) => {
      if (this.inUse(key.slice(0, key.indexOf('/'))) || this.hasCopies(key)) this.queue.add(key);
    });
    const namespaces = this.options.hostNamespaces.subscribe((namespace) => {
      if (this.inUse(namespace.metadata.name)) this.queueNamespace(namespace.metadata.name);
    });
    signal.addEventListener(
      'abort',
      () => {
        services();
        namespaces();
      },
      { once: true },
    );
  }

  get synced(): boolean {
    return this.services.hasSynced && this.slices.hasSynced;
  }

  /** No copy of this node left (after {@link drain}). */
  get drained(): boolean {
    return this.synced && this.mine(this.services).length === 0 && this.mine(this.slices).length === 0;
  }

  wake(): void {
    this.services.wake();
    this.slices.wake();
  }

  /** The remote is being removed: every copy of this node goes. */
  drain(): void {
    this.mode = 'drain';
    for (const copy of [...this.mine(this.services), ...this.mine(this.slices)]) {
      const key = sourceServiceKey(copy);
      if (key) this.queue.add(key);
    }
  }

  /** A host pod of the node appeared or went: its namespace may start or stop being in use. */
  trackHostPod(event: InformerEvent, pod: V1Pod): void {
    const namespace = pod.metadata?.namespace ?? '';
    const key = keyOf(pod);
    let pods = this.usage.get(namespace);
    if (event === 'delete') {
      if (!pods?.delete(key)) return;
      if (pods.size > 0) return;
      this.usage.delete(namespace);
      this.unusedSince.set(namespace, Date.now());
      this.queueNamespace(namespace, LINGER_MS);
      return;
    }
    if (!pods) {
      pods = new Set();
      this.usage.set(namespace, pods);
    }
    if (pods.has(key)) return;
    pods.add(key);
    if (pods.size === 1) {
      this.unusedSince.delete(namespace);
      this.queueNamespace(namespace);
    }
  }

  /** Writes so far (a no-op reconcile adds none). */
  get counts(): { readonly applies: number; readonly deletes: number } {
    return this.copies.counts;
  }

  describe(): string {
    return `${this.mine(this.services).length} reflected Services for ${this.usage.size} namespaces`;
  }

  private inUse(namespace: string): boolean {
    return (this.usage.get(namespace)?.size ?? 0) > 0;
  }

  private queueNamespace(namespace: string, afterMs = 0): void {
    const keys = new Set(this.options.hostServices.servicesIn(namespace).map((s) => keyOf(s)));
    for (const key of this.bySource.keys()) if (key.startsWith(`${namespace}/`)) keys.add(key);
    for (const key of keys) {
      if (afterMs > 0) this.queue.addAfter(key, afterMs);
      else this.queue.add(key);
    }
  }

  private mine<T extends V1Service | V1EndpointSlice>(informer: Informer<T>): T[] {
    return informer
      .list()
      .filter((o) => o.metadata?.labels?.[LABEL_VIRTUAL_NODE] === this.options.scope.nodeName);
  }

  private hasCopies(key: string): boolean {
    return (this.bySource.get(key)?.size ?? 0) > 0;
  }

  private copiesOf(key: string): { services: V1Service[]; slices: V1EndpointSlice[] } {
    const copies = [...(this.bySource.get(key) ?? [])];
    return {
      services: copies.filter((c): c is V1Service => !('addressType' in c)),
      slices: copies.filter((c): c is V1EndpointSlice => 'addressType' in c),
    };
  }

  private async reconcile(key: string): Promise<{ requeueAfter?: number } | undefined> {
    const { hostServices, hostNamespaces } = this.options;
    if (!this.options.usersKnown() || !hostServices.synced || !hostNamespaces.synced || !this.synced) {
      return { requeueAfter: 500 };
    }
    const namespace = key.slice(0, key.indexOf('/'));
    const service = hostServices.service(key);
    const annotations = hostNamespaces.get(namespace)?.metadata.annotations ?? {};
    const wanted =
      this.mode === 'run' &&
      service !== undefined &&
      this.inUse(namespace) &&
      reflectionWanted(service, annotations, this.options.enabled);
    const { services: copies, slices } = this.copiesOf(key);
    if (!wanted) {
      // The namespace's pods left the node: the copies linger a moment (they may come back).
      const since = this.unusedSince.get(namespace);
      const lingering = this.mode === 'run' && service && !this.inUse(namespace) && since !== undefined;
      if (lingering && Date.now() - since < LINGER_MS)
        return { requeueAfter: since + LINGER_MS - Date.now() };
      for (const copy of [...slices, ...copies]) await this.copies.deleteCopy(copy);
      return undefined;
    }
    const remoteNamespace = this.options.remoteNamespace(namespace);
    const desired = remoteService(service, remoteNamespace, this.options.scope);
    // A copy left in another remote namespace (the mapping moved) goes.
    for (const stale of copies.filter((c) => c.metadata?.namespace !== remoteNamespace))
      await this.copies.deleteCopy(stale);
    const outcome = await this.copies.writeService(service, desired);
    if (outcome === 'conflict') return { requeueAfter: 60_000 };
    if (outcome === 'replaced' || outcome === 'elsewhere')
      return outcome === 'replaced' ? { requeueAfter: 1000 } : undefined;
    const wantedSlices =
      service.spec?.type === 'ExternalName'
        ? []
        : hostServices
            .slicesOf(key)
            .map((slice) => remoteSlice(slice, service, remoteNamespace, this.options.scope));
    const names = new Set(wantedSlices.map((s) => keyOf(s)));
    for (const slice of wantedSlices) await this.copies.writeSlice(slice);
    for (const stale of slices.filter((s) => !names.has(keyOf(s)))) await this.copies.deleteCopy(stale);
    return undefined;
  }
}

/** The host Service a copy stands for (a slice: its Service in the source slice's namespace). */
function sourceServiceKey(copy: V1Service | V1EndpointSlice): string | undefined {
  const source = copy.metadata?.annotations?.[ANNOTATION_SOURCE];
  if (!source) return undefined;
  if (!('addressType' in copy)) return source;
  const service = copy.metadata?.labels?.[LABEL_SERVICE_NAME];
  return service ? `${source.slice(0, source.indexOf('/'))}/${service}` : undefined;
}
