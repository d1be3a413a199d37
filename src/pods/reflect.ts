// Reflection of the ConfigMaps and Secrets that mirrored pods use, following both sides. Each host
// object used by some pod of the virtual node has a copy in the remote namespace (named by
// references.reflectedName, labelled as this host cluster's and virtual node's), written with
// server-side apply (field manager `spillway`). The copy is reconciled, keyed by its host object,
// whenever either side changes: a host edit is carried over, a copy edited or deleted in the remote is
// restored within seconds, and a copy nobody uses any more is deleted.
//
// Who uses what comes from the pod caches themselves (host pods and delegates of this node), not from
// what reconciles have seen, so a restart never loses it. A copy is deleted only if, at that moment,
// no pod uses it; a delegate's creation waits for a deletion in flight and writes the copy again.
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { isConflict, isNotFound } from '../kube/errors.ts';
import { Informer, type InformerEvent, trimMetadata } from '../kube/informer.ts';
import { boundedLru } from '../lru.ts';
import { isOwnedObject, LABEL_VIRTUAL_NODE, ownedSelector } from '../ownership.ts';
import { WorkQueue } from '../queue/workqueue.ts';
import {
  ANNOTATION_SOURCE,
  type CopyScope,
  copyName,
  desiredCopy,
  FIELD_MANAGER,
  LABEL_REFLECTED,
  type Reflectable,
  sameContent,
} from './copies.ts';
import type { CopyWriter, NamespaceEnsurer } from './execute.ts';
import { type HostObjects, PLURAL } from './host-objects.ts';
import type { ReferenceCheck } from './plan.ts';
import { type Reference, type ReferenceKind, referenceKey } from './references.ts';
import { ReferenceUsage, splitReferenceKey } from './usage.ts';

/** A copy stays this long after its last user went (a rolling update: old pod gone, new pod coming). */
const LINGER_MS = 5_000;
/** A name taken by someone else's object is looked at again after this long. */
const CONFLICT_MS = 60_000;

export interface ReflectorOptions {
  readonly remote: ClusterClient;
  readonly hostObjects: HostObjects;
  readonly namespaces: NamespaceEnsurer;
  readonly hostClusterName: string;
  readonly nodeName: string;
  readonly namespacePrefix: string;
  /** The remote namespace of a host namespace (default: namespacePrefix + name). */
  readonly remoteNamespace?: (hostNamespace: string) => string;
  /** The references a host pod's delegate uses (default: delegateReferences of its spec). */
  readonly referencesOf?: (pod: V1Pod) => Reference[];
  readonly logger: Logger;
  /** Called with the pod keys that use a host object that just appeared. */
  readonly onReferencesChanged: (podKeys: readonly string[]) => void;
  /** Both pod caches have been listed once: who uses what is known. */
  readonly usersKnown: () => boolean;
}

interface CopyState {
  readonly missing?: boolean;
  readonly conflict?: string;
}

export class Reflector implements CopyWriter {
  private readonly options: ReflectorOptions;
  private readonly copies: Record<ReferenceKind, Informer<Reflectable>>;
  private readonly queue: WorkQueue;
  private readonly usage: ReferenceUsage;
  private readonly scope: CopyScope;
  private readonly unusedSince = new Map<string, number>();
  private readonly conflicts = new Map<string, { message: string; at: number }>();
  /** Copies deleted by us, until their informer shows it (so a lagging cache never resurrects them). */
  private readonly deleted = boundedLru<string, true>({ limit: 10_000, ttl: 10 * 60_000 });
  /** One write or delete at a time per reference: creating a delegate waits for a deletion in flight. */
  private readonly chains = new Map<string, Promise<unknown>>();
  private mode: 'run' | 'drain' = 'run';
  /** Copy writes and deletes so far (tests read them). */
  readonly counts = { applies: 0, deletes: 0 };

  constructor(options: ReflectorOptions) {
    this.options = options;
    this.scope = options;
    this.usage = new ReferenceUsage(
      options,
      {
        firstUser: (key) => {
          const [kind, namespace, name] = splitReferenceKey(key);
          options.hostObjects.retain(kind, namespace, name);
          this.unusedSince.delete(key);
          this.queue.add(key);
        },
        lastUserGone: (key) => {
          const [kind, namespace, name] = splitReferenceKey(key);
          options.hostObjects.release(kind, namespace, name);
        },
        // Looked at after the linger: a rolling update's new pod may use it in a moment.
        maybeUnused: (key) => this.queue.addAfter(key, LINGER_MS),
      },
      (copyKey) => {
        const [kind, namespace, name] = splitReferenceKey(copyKey);
        const source = this.copies[kind]?.get(`${namespace}/${name}`)?.metadata?.annotations?.[
          ANNOTATION_SOURCE
        ];
        return source ? `${kind}/${source}` : undefined;
      },
    );
    const copyInformer = (kind: ReferenceKind) => {
      const informer = new Informer<Reflectable>({
        name: `${options.remote.name}/${PLURAL[kind]}-copies/${options.nodeName}`,
        client: options.remote,
        path: `/api/v1/${PLURAL[kind]}`,
        labelSelector: `${ownedSelector(options.hostClusterName)},${LABEL_VIRTUAL_NODE}=${options.nodeName},${LABEL_REFLECTED}`,
        transform: trimMetadata,
        logger: options.logger,
      });
      // A copy changed or vanished in the remote (our write, or someone else's): look at it again.
      informer.on((_event, copy) => {
        const source = copy.metadata?.annotations?.[ANNOTATION_SOURCE];
        if (source) this.queue.add(`${kind}/${source}`);
      });
      return informer;
    };
    this.copies = { ConfigMap: copyInformer('ConfigMap'), Secret: copyInformer('Secret') };
    this.queue = new WorkQueue({
      name: `reflection/${options.nodeName}`,
      workers: 4,
      logger: options.logger,
      reconcile: (key) => this.reconcile(key),
    });
  }

  start(signal: AbortSignal): void {
    for (const informer of Object.values(this.copies)) informer.start(signal);
    this.queue.start(signal);
    const unsubscribe = this.options.hostObjects.subscribe((kind, namespace, name, event) => {
      const key = referenceKey(kind, namespace, name);
      if (this.usage.users(key) === 0) return;
      this.queue.add(key);
      // Pods held for a missing object run as soon as it exists.
      if (event === 'add') this.options.onReferencesChanged(this.usage.hostPodsUsing(key));
    });
    signal.addEventListener('abort', unsubscribe, { once: true });
  }

  get synced(): boolean {
    return Object.values(this.copies).every((i) => i.hasSynced);
  }

  /** Every copy of this node is gone (after {@link drain}). */
  get drained(): boolean {
    return this.synced && Object.values(this.copies).every((i) => i.size === 0);
  }

  wake(): void {
    for (const informer of Object.values(this.copies)) informer.wake();
  }

  /** The remote is being removed: every copy goes, whoever uses it. */
  drain(): void {
    this.mode = 'drain';
    for (const key of this.copiedKeys()) this.queue.add(key);
  }

  /** A host pod of the virtual node appeared, changed or went away (from the host pod informer). */
  trackHostPod(event: InformerEvent, pod: V1Pod): void {
    this.usage.trackHostPod(event, pod);
  }

  /** A delegate of the virtual node appeared, changed or went away (from the delegate informer). */
  trackDelegate(event: InformerEvent, delegate: V1Pod): void {
    this.usage.trackDelegate(event, delegate);
  }

  /** The references of a host pod, as tracked (undefined before its informer event). */
  referencesOf(podKey: string): readonly Reference[] | undefined {
    return this.usage.referencesOf(podKey);
  }

  /** What the caches say about a pod's references: no request is made. */
  check(hostNamespace: string, references: readonly Reference[]): ReferenceCheck {
    const now = Date.now();
    const missing = references.filter(
      (r) => !r.optional && !this.options.hostObjects.get(r.kind, hostNamespace, r.name),
    );
    const conflicts: string[] = [];
    for (const r of references) {
      const conflict = this.conflicts.get(referenceKey(r.kind, hostNamespace, r.name));
      if (conflict && now - conflict.at < CONFLICT_MS) conflicts.push(conflict.message);
    }
    return { missing, conflicts, references };
  }

  /** Makes the copies of these references exist and match their host objects, before a delegate needs them. */
  async ensure(hostNamespace: string, references: readonly Reference[]) {
    const missing: Reference[] = [];
    const conflicts: string[] = [];
    for (const reference of references) {
      const key = referenceKey(reference.kind, hostNamespace, reference.name);
      const state = await this.serially(key, () => this.sync(key));
      if (state.missing && !reference.optional) missing.push(reference);
      if (state.conflict) conflicts.push(state.conflict);
    }
    return { missing, conflicts };
  }

  /** Queues every copy nobody uses (left behind by a crash, or by pods that went while we were down). */
  collectUnused(): void {
    for (const key of this.copiedKeys()) if (this.usage.users(key) === 0) this.queue.add(key);
  }

  describe(): string {
    return `${this.usage.objects} reflected objects for ${this.usage.pods} pods`;
  }

  private copiedKeys(): string[] {
    const keys: string[] = [];
    for (const kind of ['ConfigMap', 'Secret'] as const) {
      for (const copy of this.copies[kind].list()) {
        const source = copy.metadata?.annotations?.[ANNOTATION_SOURCE];
        if (source) keys.push(`${kind}/${source}`);
      }
    }
    return keys;
  }

  private liveCopy(kind: ReferenceKind, namespace: string, name: string): Reflectable | undefined {
    const copy = this.copies[kind].get(`${namespace}/${name}`);
    return copy && !this.deleted.has(copy.metadata?.uid ?? '') ? copy : undefined;
  }

  private serially<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(work);
    this.chains.set(key, next);
    void next
      .catch(() => {})
      .finally(() => {
        if (this.chains.get(key) === next) this.chains.delete(key);
      });
    return next;
  }

  private async reconcile(key: string): Promise<{ requeueAfter?: number } | undefined> {
    if (!this.options.usersKnown() || !this.options.hostObjects.synced || !this.synced) {
      return { requeueAfter: 500 };
    }
    const state = await this.serially(key, () => this.sync(key));
    if (state.conflict) return { requeueAfter: CONFLICT_MS };
    const since = this.unusedSince.get(key);
    if (since !== undefined && this.mode === 'run')
      return { requeueAfter: Math.max(100, since + LINGER_MS - Date.now()) };
    return undefined;
  }

  /** The copy's own ladder: used and present on the host → written; unused or gone on the host → deleted. */
  private async sync(key: string): Promise<CopyState> {
    const [kind, hostNamespace, name] = splitReferenceKey(key);
    const target = copyName(kind, hostNamespace, name, this.scope);
    const copy = this.liveCopy(kind, target.namespace, target.name);
    if (this.mode === 'drain' || this.usage.users(key) === 0) {
      if (!copy) {
        this.unusedSince.delete(key);
        return {};
      }
      const since = this.unusedSince.get(key) ?? Date.now();
      this.unusedSince.set(key, since);
      if (this.mode === 'run' && Date.now() - since < LINGER_MS) return {};
      // Nobody uses it at this moment (checked just above, with nothing awaited since): it goes.
      await this.deleteCopy(kind, copy);
      this.unusedSince.delete(key);
      return {};
    }
    this.unusedSince.delete(key);
    const source = await this.options.hostObjects.content(kind, hostNamespace, name);
    if (!source) {
      // The host object was deleted: its copy follows (running delegates keep what they read, as on a kubelet).
      if (copy) await this.deleteCopy(kind, copy);
      return { missing: true };
    }
    const desired = desiredCopy(kind, source, this.scope);
    if (copy && sameContent(copy, desired)) return {};
    const conflict = await this.write(kind, desired, copy);
    if (conflict) {
      this.conflicts.set(key, { message: conflict, at: Date.now() });
      return { conflict };
    }
    this.conflicts.delete(key);
    return {};
  }

  /**
   * Server-side apply of the copy. An existing copy of ours is applied with its resourceVersion as a
   * precondition (force: a remote edit of our fields is undone). A copy not in our cache is looked up
   * once: a same-named object that is not ours is never touched (the conflict is returned).
   */
  private async write(kind: ReferenceKind, desired: Reflectable, existing: Reflectable | undefined) {
    const { remote, namespaces, hostClusterName, nodeName } = this.options;
    const namespace = desired.metadata?.namespace ?? '';
    const name = desired.metadata?.name ?? '';
    const path = `/api/v1/namespaces/${namespace}/${PLURAL[kind]}/${name}`;
    let current = existing;
    if (!current) {
      await namespaces.ensure(namespace);
      current = await remote.get<Reflectable>(path).catch((error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      });
      const labels = current?.metadata?.labels;
      if (current && !(isOwnedObject(labels, hostClusterName) && labels?.[LABEL_VIRTUAL_NODE] === nodeName)) {
        return `${kind} ${namespace}/${name} exists in the remote cluster and is not this Spillway's`;
      }
    }
    const body = current
      ? { ...desired, metadata: { ...desired.metadata, resourceVersion: current.metadata?.resourceVersion } }
      : desired;
    try {
      await remote.patch(path, body, 'apply', { query: { fieldManager: FIELD_MANAGER, force: true } });
      this.counts.applies++;
    } catch (error) {
      if (namespaces.isGone(error)) namespaces.forget(namespace);
      if (isConflict(error)) {
        throw new Error(`${kind} ${namespace}/${name} changed while writing it; retrying`, { cause: error });
      }
      throw new Error(`reflecting ${kind} ${namespace}/${name}`, { cause: error });
    }
    return undefined;
  }

  /** Deletes a copy of ours, only the one we saw (UID precondition). */
  private async deleteCopy(kind: ReferenceKind, copy: Reflectable): Promise<void> {
    const namespace = copy.metadata?.namespace ?? '';
    const name = copy.metadata?.name ?? '';
    try {
      await this.options.remote.delete(`/api/v1/namespaces/${namespace}/${PLURAL[kind]}/${name}`, {
        preconditions: { uid: copy.metadata?.uid },
      });
      this.counts.deletes++;
    } catch (error) {
      if (!isNotFound(error) && !isConflict(error)) {
        throw new Error(`deleting ${kind} ${namespace}/${name}`, { cause: error });
      }
    }
    this.deleted.set(copy.metadata?.uid ?? '', true);
  }
}
