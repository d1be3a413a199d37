// Who uses which host ConfigMap or Secret on one virtual node, from the pod caches themselves (host
// pods and delegates), so a restart never loses it. A pod's references are immutable: they are
// computed once per pod UID.
import type { V1Pod } from '@kubernetes/client-node';
import { type InformerEvent, keyOf } from '../kube/informer.ts';
import type { CopyScope } from './copies.ts';
import { copyName } from './copies.ts';
import { delegateReferences } from './forge.ts';
import { type Reference, type ReferenceKind, referenceKey, referencesOf } from './references.ts';

export interface UsageListener {
  /** A host object got its first host pod using it. */
  readonly firstUser: (referenceKey: string) => void;
  /** A host object lost its last host pod using it. */
  readonly lastUserGone: (referenceKey: string) => void;
  /** A copy may be unused now (by host pods and delegates alike). */
  readonly maybeUnused: (referenceKey: string) => void;
}

interface Uses {
  readonly uid: string;
  readonly keys: readonly string[];
}

export function splitReferenceKey(key: string): [ReferenceKind, string, string] {
  const [kind, namespace = '', ...rest] = key.split('/');
  return [kind as ReferenceKind, namespace, rest.join('/')];
}

export class ReferenceUsage {
  private readonly scope: CopyScope;
  private readonly listener: UsageListener;
  /** Reference key (Kind/hostNamespace/name) → keys of the host pods that use it. */
  private readonly hostUsers = new Map<string, Set<string>>();
  private readonly hostPodUses = new Map<string, Uses & { readonly references: readonly Reference[] }>();
  /** Copy key (Kind/remoteNamespace/copyName) → keys of the delegates that use it. */
  private readonly delegateUsers = new Map<string, Set<string>>();
  private readonly delegateUses = new Map<string, Uses>();
  /** The source of each copy key, as learned from the copies themselves. */
  readonly sourceOfCopy: (copyKey: string) => string | undefined;

  constructor(
    scope: CopyScope,
    listener: UsageListener,
    sourceOfCopy: (copyKey: string) => string | undefined,
  ) {
    this.scope = scope;
    this.listener = listener;
    this.sourceOfCopy = sourceOfCopy;
  }

  /** Pods (host pods and delegates) of this node using the host object now. */
  users(key: string): number {
    const [kind, namespace, name] = splitReferenceKey(key);
    const copy = copyName(kind, namespace, name, this.scope);
    return (
      (this.hostUsers.get(key)?.size ?? 0) +
      (this.delegateUsers.get(`${kind}/${copy.namespace}/${copy.name}`)?.size ?? 0)
    );
  }

  hostPodsUsing(key: string): readonly string[] {
    return [...(this.hostUsers.get(key) ?? [])];
  }

  /** The references of a host pod, as tracked (undefined before its informer event). */
  referencesOf(podKey: string): readonly Reference[] | undefined {
    return this.hostPodUses.get(podKey)?.references;
  }

  get objects(): number {
    return this.hostUsers.size;
  }

  get pods(): number {
    return this.hostPodUses.size;
  }

  /** A host pod of the virtual node appeared, changed or went away. */
  trackHostPod(event: InformerEvent, pod: V1Pod): void {
    const podKey = keyOf(pod);
    const uid = pod.metadata?.uid ?? '';
    const previous = this.hostPodUses.get(podKey);
    if (event !== 'delete' && previous?.uid === uid) return;
    if (previous) {
      this.hostPodUses.delete(podKey);
      for (const key of previous.keys) {
        if (this.remove(this.hostUsers, key, podKey)) this.listener.lastUserGone(key);
        if (this.users(key) === 0) this.listener.maybeUnused(key);
      }
    }
    if (event === 'delete') return;
    const namespace = pod.metadata?.namespace ?? '';
    const references = delegateReferences(pod.spec);
    const keys = references.map((r) => referenceKey(r.kind, namespace, r.name));
    this.hostPodUses.set(podKey, { uid, keys, references });
    for (const key of keys) if (this.add(this.hostUsers, key, podKey)) this.listener.firstUser(key);
  }

  /** A delegate of the virtual node appeared, changed or went away. */
  trackDelegate(event: InformerEvent, delegate: V1Pod): void {
    const delegateKey = keyOf(delegate);
    const uid = delegate.metadata?.uid ?? '';
    const previous = this.delegateUses.get(delegateKey);
    if (event !== 'delete' && previous?.uid === uid) return;
    if (previous) {
      this.delegateUses.delete(delegateKey);
      for (const copyKey of previous.keys) {
        if (!this.remove(this.delegateUsers, copyKey, delegateKey)) continue;
        const source = this.sourceOfCopy(copyKey);
        if (source && this.users(source) === 0) this.listener.maybeUnused(source);
      }
    }
    if (event === 'delete') return;
    const namespace = delegate.metadata?.namespace ?? '';
    const keys = referencesOf(delegate.spec).map((r) => `${r.kind}/${namespace}/${r.name}`);
    this.delegateUses.set(delegateKey, { uid, keys });
    for (const copyKey of keys) this.add(this.delegateUsers, copyKey, delegateKey);
  }

  /** Adds a user; true when it is the first. */
  private add(index: Map<string, Set<string>>, key: string, user: string): boolean {
    let users = index.get(key);
    if (!users) {
      users = new Set();
      index.set(key, users);
    }
    users.add(user);
    return users.size === 1;
  }

  /** Removes a user; true when it was the last. */
  private remove(index: Map<string, Set<string>>, key: string, user: string): boolean {
    const users = index.get(key);
    if (!users?.delete(user) || users.size > 0) return false;
    index.delete(key);
    return true;
  }
}
