// Reflection of the ConfigMaps and Secrets mirrored pods use: a copy in the remote namespace (named by
// references.reflectedName, labelled as this host cluster's and virtual node's), kept in sync when the
// host object changes, and deleted once no delegate uses it. Host objects are watched cluster-wide but
// cached only while some mirrored pod references them.
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { isAlreadyExists, isConflict, isNotFound } from '../kube/errors.ts';
import { Informer, trimMetadata } from '../kube/informer.ts';
import {
  LABEL_HOST_CLUSTER,
  LABEL_MANAGED_BY,
  LABEL_VIRTUAL_NODE,
  MANAGED_BY_VALUE,
  ownedSelector,
} from '../ownership.ts';
import { WorkQueue } from '../queue/workqueue.ts';
import { delegateNamespace } from './forge.ts';
import { type Reference, type ReferenceKind, referenceKey, reflectedName } from './references.ts';

export const LABEL_REFLECTED = 'spillway.dev/reflected';
export const ANNOTATION_SOURCE = 'spillway.dev/source';
export const ANNOTATION_SOURCE_VERSION = 'spillway.dev/source-resource-version';

type Reflectable = V1ConfigMap & V1Secret;

const plural: Record<ReferenceKind, string> = { ConfigMap: 'configmaps', Secret: 'secrets' };

export interface ReflectorOptions {
  readonly host: ClusterClient;
  readonly remote: ClusterClient;
  readonly hostClusterName: string;
  readonly nodeName: string;
  readonly namespacePrefix: string;
  readonly logger: Logger;
  /** Called with the pod keys that use a host object that just changed, appeared or went away. */
  readonly onReferencesChanged: (podKeys: readonly string[]) => void;
}

export interface ReflectionResult {
  /** Mandatory references whose host object does not exist. */
  readonly missing: Reference[];
  /** Copies that exist in the remote but are not ours (never overwritten). */
  readonly conflicts: string[];
}

export class Reflector {
  private readonly options: ReflectorOptions;
  /** Host object key (Kind/ns/name) → keys of the pods that use it. */
  private readonly users = new Map<string, Set<string>>();
  /** Pod key → the host object keys it uses. */
  private readonly uses = new Map<string, Set<string>>();
  private readonly hostInformers: Record<ReferenceKind, Informer<Reflectable>>;
  private readonly copies: Record<ReferenceKind, Informer<Reflectable>>;
  private readonly cleanup: WorkQueue;

  constructor(options: ReflectorOptions) {
    this.options = options;
    const tracked = (kind: ReferenceKind) => (object: Reflectable) =>
      this.users.has(referenceKey(kind, object.metadata?.namespace ?? '', object.metadata?.name ?? ''));
    const hostInformer = (kind: ReferenceKind) => {
      const informer = new Informer<Reflectable>({
        name: `host/${plural[kind]}-reflected`,
        client: options.host,
        path: `/api/v1/${plural[kind]}`,
        filter: tracked(kind),
        transform: trimMetadata,
        logger: options.logger,
      });
      informer.on((_event, object) => {
        const key = referenceKey(kind, object.metadata?.namespace ?? '', object.metadata?.name ?? '');
        options.onReferencesChanged([...(this.users.get(key) ?? [])]);
      });
      return informer;
    };
    const copyInformer = (kind: ReferenceKind) =>
      new Informer<Reflectable>({
        name: `${options.remote.name}/${plural[kind]}-copies`,
        client: options.remote,
        path: `/api/v1/${plural[kind]}`,
        labelSelector: `${ownedSelector(options.hostClusterName)},${LABEL_VIRTUAL_NODE}=${options.nodeName},${LABEL_REFLECTED}`,
        transform: trimMetadata,
        logger: options.logger,
      });
    this.hostInformers = { ConfigMap: hostInformer('ConfigMap'), Secret: hostInformer('Secret') };
    this.copies = { ConfigMap: copyInformer('ConfigMap'), Secret: copyInformer('Secret') };
    this.cleanup = new WorkQueue({
      name: `reflection-cleanup/${options.nodeName}`,
      workers: 2,
      logger: options.logger,
      reconcile: (key) => this.deleteUnusedCopy(key),
    });
  }

  start(signal: AbortSignal): void {
    for (const informer of [...Object.values(this.hostInformers), ...Object.values(this.copies)])
      informer.start(signal);
    this.cleanup.start(signal);
  }

  get synced(): boolean {
    return Object.values(this.copies).every((i) => i.hasSynced);
  }

  /**
   * Makes the remote copies of what the pod references exist and match the host, and records that the
   * pod uses them. Missing mandatory objects and foreign same-named objects are reported, not fatal.
   */
  async reflect(
    podKey: string,
    hostNamespace: string,
    references: readonly Reference[],
  ): Promise<ReflectionResult> {
    const keys = new Set(references.map((r) => referenceKey(r.kind, hostNamespace, r.name)));
    this.track(podKey, keys);
    const missing: Reference[] = [];
    const conflicts: string[] = [];
    for (const reference of references) {
      const source = await this.hostObject(reference.kind, hostNamespace, reference.name);
      if (!source) {
        if (!reference.optional) missing.push(reference);
        continue;
      }
      const conflict = await this.syncCopy(reference.kind, source);
      if (conflict) conflicts.push(conflict);
    }
    return { missing, conflicts };
  }

  /** The pod no longer needs its references; copies nobody uses any more are deleted shortly after. */
  release(podKey: string): void {
    this.track(podKey, new Set());
  }

  private track(podKey: string, keys: Set<string>): void {
    const before = this.uses.get(podKey) ?? new Set<string>();
    for (const key of before) {
      if (keys.has(key)) continue;
      const users = this.users.get(key);
      users?.delete(podKey);
      if (users?.size === 0) {
        this.users.delete(key);
        // A short delay keeps the copy through a rolling update (old pod gone, new pod coming).
        this.cleanup.addAfter(key, 5_000);
      }
    }
    for (const key of keys) {
      const users = this.users.get(key) ?? new Set<string>();
      users.add(podKey);
      this.users.set(key, users);
    }
    if (keys.size > 0) this.uses.set(podKey, keys);
    else this.uses.delete(podKey);
  }

  private async hostObject(
    kind: ReferenceKind,
    namespace: string,
    name: string,
  ): Promise<Reflectable | undefined> {
    const cached = this.hostInformers[kind].get(`${namespace}/${name}`);
    if (cached) return cached;
    try {
      return await this.options.host.get<Reflectable>(
        `/api/v1/namespaces/${namespace}/${plural[kind]}/${name}`,
      );
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new Error(`reading ${kind} ${namespace}/${name} in the host cluster`, { cause: error });
    }
  }

  private copyOf(kind: ReferenceKind, source: Reflectable): Reflectable {
    const { hostClusterName, nodeName, namespacePrefix } = this.options;
    const copy: Reflectable = {
      apiVersion: 'v1',
      kind,
      metadata: {
        name: reflectedName(source.metadata?.name ?? '', { hostClusterName, nodeName }),
        namespace: delegateNamespace(source.metadata?.namespace ?? '', namespacePrefix),
        labels: {
          [LABEL_MANAGED_BY]: MANAGED_BY_VALUE,
          [LABEL_HOST_CLUSTER]: hostClusterName,
          [LABEL_VIRTUAL_NODE]: nodeName,
          [LABEL_REFLECTED]: kind,
        },
        annotations: {
          [ANNOTATION_SOURCE]: `${source.metadata?.namespace}/${source.metadata?.name}`,
          [ANNOTATION_SOURCE_VERSION]: source.metadata?.resourceVersion ?? '',
        },
      },
    };
    if (source.data) copy.data = source.data;
    if (kind === 'ConfigMap' && source.binaryData) copy.binaryData = source.binaryData;
    // A service-account token Secret would be claimed (and emptied) by the remote's token controller.
    if (kind === 'Secret')
      copy.type = source.type === 'kubernetes.io/service-account-token' ? 'Opaque' : source.type;
    return copy;
  }

  /** Returns a conflict description when a same-named object exists remotely that is not ours. */
  private async syncCopy(kind: ReferenceKind, source: Reflectable): Promise<string | undefined> {
    const desired = this.copyOf(kind, source);
    const namespace = desired.metadata?.namespace as string;
    const name = desired.metadata?.name as string;
    const existing = this.copies[kind].get(`${namespace}/${name}`);
    const version = source.metadata?.resourceVersion;
    if (existing?.metadata?.annotations?.[ANNOTATION_SOURCE_VERSION] === version) return undefined;
    const path = `/api/v1/namespaces/${namespace}/${plural[kind]}`;
    try {
      if (existing) {
        await this.options.remote.replace(`${path}/${name}`, {
          ...desired,
          metadata: { ...desired.metadata, resourceVersion: existing.metadata?.resourceVersion },
        });
      } else {
        await this.options.remote.create(path, desired);
      }
      return undefined;
    } catch (error) {
      if (isAlreadyExists(error)) {
        // Not in our cache: either ours and not seen yet, or someone else's. Look once.
        const current = await this.options.remote.get<Reflectable>(`${path}/${name}`);
        if (current.metadata?.labels?.[LABEL_HOST_CLUSTER] !== this.options.hostClusterName) {
          return `${kind} ${namespace}/${name} exists in the remote cluster and is not Spillway's`;
        }
        await this.options.remote.replace(`${path}/${name}`, {
          ...desired,
          metadata: { ...desired.metadata, resourceVersion: current.metadata?.resourceVersion },
        });
        return undefined;
      }
      if (isConflict(error))
        throw new Error(`${kind} ${namespace}/${name} changed while updating it; retrying`, { cause: error });
      throw new Error(`reflecting ${kind} ${source.metadata?.namespace}/${source.metadata?.name}`, {
        cause: error,
      });
    }
  }

  /** Deletes the remote copy of a host object nobody uses any more (UID precondition). */
  private async deleteUnusedCopy(key: string): Promise<undefined> {
    if (this.users.has(key)) return undefined;
    const [kind, namespace, name] = key.split('/') as [ReferenceKind, string, string];
    const { hostClusterName, nodeName, namespacePrefix } = this.options;
    const copyName = reflectedName(name, { hostClusterName, nodeName });
    const copyNamespace = delegateNamespace(namespace, namespacePrefix);
    const copy = this.copies[kind].get(`${copyNamespace}/${copyName}`);
    if (!copy) return undefined;
    try {
      await this.options.remote.delete(`/api/v1/namespaces/${copyNamespace}/${plural[kind]}/${copyName}`, {
        preconditions: { uid: copy.metadata?.uid },
      });
    } catch (error) {
      if (!isNotFound(error) && !isConflict(error)) throw error;
    }
    return undefined;
  }

  /**
   * Deletes copies in the remote that no pod bound to the virtual node references (left behind by a
   * restart or a crash). `referenced` comes from the host pods themselves, not from what this process
   * has tracked so far, so a pod not yet reconciled since start never loses its objects.
   */
  collectUnused(referenced: ReadonlySet<string>): void {
    for (const kind of ['ConfigMap', 'Secret'] as const) {
      for (const copy of this.copies[kind].list()) {
        const source = copy.metadata?.annotations?.[ANNOTATION_SOURCE];
        if (!source) continue;
        const key = `${kind}/${source}`;
        if (!this.users.has(key) && !referenced.has(key)) this.cleanup.add(key);
      }
    }
  }

  describe(): string {
    return `${this.users.size} reflected objects for ${this.uses.size} pods`;
  }
}
