// Remote objects of one virtual node found by the host pod they stand for (the annotations
// spillway.dev/host-namespace and spillway.dev/host-name), wherever they are: a host namespace's remote
// namespace can change (see src/namespaces/), and the delegates already running keep theirs.
import { type Informer, type KubeObject, keyOf } from '../kube/informer.ts';
import { ANNOTATION_HOST_NAME, ANNOTATION_HOST_NAMESPACE } from './forge.ts';

type Annotated = KubeObject & { metadata?: { annotations?: Record<string, string> } };

export function hostKeyOfObject(object: Annotated): string | undefined {
  const namespace = object.metadata?.annotations?.[ANNOTATION_HOST_NAMESPACE];
  const name = object.metadata?.annotations?.[ANNOTATION_HOST_NAME];
  return namespace && name ? `${namespace}/${name}` : undefined;
}

export class HostKeyIndex<T extends Annotated> {
  private readonly informer: Informer<T, T>;
  /** Host key → keys (namespace/name) of the objects standing for it. */
  private readonly index = new Map<string, Set<string>>();
  /** Host namespace → remote namespace → how many objects of it are there. */
  private readonly namespaces = new Map<string, Map<string, number>>();

  /** Called when a host namespace starts or stops having objects in some remote namespace. */
  onNamespacesChanged: ((hostNamespace: string) => void) | undefined;

  constructor(informer: Informer<T, T>) {
    this.informer = informer;
    informer.on((event, object, previous) => {
      const key = keyOf(object);
      const before = previous ? hostKeyOfObject(previous) : undefined;
      if (before !== undefined) this.remove(before, key);
      const after = event === 'delete' ? undefined : hostKeyOfObject(object);
      if (after !== undefined) this.add(after, key);
    });
  }

  /** Every object standing for the host pod, the one whose `pick` holds first. */
  get(hostKey: string, pick?: (object: T) => boolean): T | undefined {
    const objects = [...(this.index.get(hostKey) ?? [])]
      .map((key) => this.informer.get(key))
      .filter((o): o is T => o !== undefined);
    return (pick ? objects.find(pick) : undefined) ?? objects[0];
  }

  /** The remote namespaces holding objects of the host namespace, with how many objects each. */
  namespacesOf(hostNamespace: string): ReadonlyMap<string, number> {
    return this.namespaces.get(hostNamespace) ?? new Map();
  }

  private add(hostKey: string, key: string): void {
    let keys = this.index.get(hostKey);
    if (!keys) {
      keys = new Set();
      this.index.set(hostKey, keys);
    }
    if (keys.has(key)) return;
    keys.add(key);
    this.count(hostKey, key, 1);
  }

  private remove(hostKey: string, key: string): void {
    const keys = this.index.get(hostKey);
    if (!keys?.delete(key)) return;
    this.count(hostKey, key, -1);
    if (keys.size === 0) this.index.delete(hostKey);
  }

  private count(hostKey: string, key: string, delta: number): void {
    const hostNamespace = hostKey.slice(0, hostKey.indexOf('/'));
    const remoteNamespace = key.slice(0, key.indexOf('/'));
    let counts = this.namespaces.get(hostNamespace);
    if (!counts) {
      counts = new Map();
      this.namespaces.set(hostNamespace, counts);
    }
    const next = (counts.get(remoteNamespace) ?? 0) + delta;
    if (next > 0) counts.set(remoteNamespace, next);
    else counts.delete(remoteNamespace);
    if (counts.size === 0) this.namespaces.delete(hostNamespace);
    if (next === 0 || (next === 1 && delta === 1)) this.onNamespacesChanged?.(hostNamespace);
  }
}
