// The host cluster's ConfigMaps and Secrets, watched once per host client and shared by every remote.
// Each object is cached as a stub (namespace, name, UID, resourceVersion) unless some mirrored pod uses
// it, in which case its content is kept as well: a reconcile never GETs a host object, and the cache
// holds the content of what is reflected only (a cluster's Helm release Secrets stay stubs).
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { isNotFound } from '../kube/errors.ts';
import { Informer, type InformerEvent, keyOf } from '../kube/informer.ts';
import { type ReferenceKind, referenceKey } from './references.ts';

/** What is kept of a host ConfigMap or Secret: identity always, content while it is used. */
export interface HostObject {
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
  };
  /** Whether data, binaryData and type are present (false: a stub). */
  hydrated: boolean;
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
  type?: string;
}

type Raw = V1ConfigMap & V1Secret;

export const PLURAL: Record<ReferenceKind, string> = { ConfigMap: 'configmaps', Secret: 'secrets' };
const KINDS: readonly ReferenceKind[] = ['ConfigMap', 'Secret'];

export type HostObjectListener = (
  kind: ReferenceKind,
  namespace: string,
  name: string,
  event: InformerEvent,
) => void;

export class HostObjects {
  private readonly host: ClusterClient;
  private readonly informers: Record<ReferenceKind, Informer<Raw, HostObject>>;
  /** Reference key (Kind/ns/name) → how many virtual nodes have a pod using it. */
  private readonly retained = new Map<string, number>();
  private readonly hydrating = new Map<string, Promise<HostObject | undefined>>();
  private readonly listeners = new Set<HostObjectListener>();
  private started = false;

  constructor(options: { host: ClusterClient; logger: Logger }) {
    this.host = options.host;
    const informer = (kind: ReferenceKind) => {
      const cache = new Informer<Raw, HostObject>({
        name: `host/${PLURAL[kind]}`,
        client: options.host,
        path: `/api/v1/${PLURAL[kind]}`,
        transform: (raw) => this.slim(kind, raw),
        logger: options.logger,
      });
      cache.on((event, object) => {
        for (const listener of this.listeners) {
          listener(kind, object.metadata.namespace, object.metadata.name, event);
        }
      });
      return cache;
    };
    this.informers = { ConfigMap: informer('ConfigMap'), Secret: informer('Secret') };
  }

  /** Starts the watches once, whichever remote asks first; they run until the signal aborts. */
  start(signal: AbortSignal): void {
    if (this.started) return;
    this.started = true;
    for (const kind of KINDS) this.informers[kind].start(signal);
  }

  get synced(): boolean {
    return KINDS.every((kind) => this.informers[kind].hasSynced);
  }

  get ready(): Promise<void> {
    return Promise.all(KINDS.map((kind) => this.informers[kind].ready)).then(() => undefined);
  }

  /** Called for every change of any host ConfigMap or Secret; returns the unsubscribe function. */
  subscribe(listener: HostObjectListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The object as cached (maybe a stub), or undefined if it does not exist. */
  get(kind: ReferenceKind, namespace: string, name: string): HostObject | undefined {
    return this.informers[kind].get(`${namespace}/${name}`);
  }

  /** Some pod of a virtual node uses the object: its content is kept from now on. */
  retain(kind: ReferenceKind, namespace: string, name: string): void {
    const key = referenceKey(kind, namespace, name);
    this.retained.set(key, (this.retained.get(key) ?? 0) + 1);
  }

  /** One virtual node less uses it; with none left, the cached content is dropped. */
  release(kind: ReferenceKind, namespace: string, name: string): void {
    const key = referenceKey(kind, namespace, name);
    const count = (this.retained.get(key) ?? 0) - 1;
    if (count > 0) {
      this.retained.set(key, count);
      return;
    }
    this.retained.delete(key);
    const cached = this.get(kind, namespace, name);
    if (cached?.hydrated) {
      // The cache entry is this module's own slim object: emptying it in place is what frees the memory.
      cached.hydrated = false;
      delete cached.data;
      delete cached.binaryData;
      delete cached.type;
    }
  }

  /**
   * The object with its content. A stub (cached before anyone used it) is read once from the API
   * server; from then on its watch events carry the content.
   */
  async content(kind: ReferenceKind, namespace: string, name: string): Promise<HostObject | undefined> {
    const cached = this.get(kind, namespace, name);
    if (!cached || cached.hydrated) return cached;
    const key = referenceKey(kind, namespace, name);
    let pending = this.hydrating.get(key);
    if (!pending) {
      pending = this.hydrate(kind, namespace, name).finally(() => this.hydrating.delete(key));
      this.hydrating.set(key, pending);
    }
    return pending;
  }

  private async hydrate(
    kind: ReferenceKind,
    namespace: string,
    name: string,
  ): Promise<HostObject | undefined> {
    let raw: Raw;
    try {
      raw = await this.host.get<Raw>(`/api/v1/namespaces/${namespace}/${PLURAL[kind]}/${name}`);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new Error(`reading ${kind} ${namespace}/${name} in the host cluster`, { cause: error });
    }
    const full = this.full(kind, raw);
    const cached = this.get(kind, namespace, name);
    // Fill the cache entry in place unless a newer event replaced it meanwhile (that one is complete).
    if (cached && !cached.hydrated && cached.metadata.resourceVersion === full.metadata.resourceVersion) {
      Object.assign(cached, {
        hydrated: true,
        data: full.data,
        binaryData: full.binaryData,
        type: full.type,
      });
    }
    return full;
  }

  private slim(kind: ReferenceKind, raw: Raw): HostObject {
    const [namespace = '', name = ''] = keyOf(raw).split('/');
    if (this.retained.has(referenceKey(kind, namespace, name))) return this.full(kind, raw);
    return { metadata: identity(raw), hydrated: false };
  }

  private full(kind: ReferenceKind, raw: Raw): HostObject {
    const object: HostObject = { metadata: identity(raw), hydrated: true };
    if (raw.data) object.data = raw.data;
    if (kind === 'ConfigMap' && raw.binaryData) object.binaryData = raw.binaryData;
    if (kind === 'Secret' && raw.type) object.type = raw.type;
    return object;
  }
}

function identity(raw: Raw): HostObject['metadata'] {
  return {
    name: raw.metadata?.name ?? '',
    namespace: raw.metadata?.namespace ?? '',
    uid: raw.metadata?.uid,
    resourceVersion: raw.metadata?.resourceVersion,
  };
}
