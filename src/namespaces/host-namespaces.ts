// The host cluster's Namespaces, watched once per host client and shared by every remote, the webhook
// and the Service reflectors: each kept as its name, UID, creation time and Spillway's annotations
// (the offloading policy), nothing else.
import type { V1Namespace } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { Informer } from '../kube/informer.ts';

export interface HostNamespace {
  readonly metadata: {
    readonly name: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
    readonly creationTimestamp?: string;
    /** Only spillway.dev/ annotations. */
    readonly annotations: Readonly<Record<string, string>>;
  };
}

export type HostNamespaceListener = (namespace: HostNamespace) => void;

export class HostNamespaces {
  private readonly informer: Informer<V1Namespace, HostNamespace>;
  private readonly listeners = new Set<HostNamespaceListener>();
  private started = false;

  constructor(options: { host: ClusterClient; logger: Logger }) {
    this.informer = new Informer<V1Namespace, HostNamespace>({
      name: 'host/namespaces',
      client: options.host,
      path: '/api/v1/namespaces',
      transform: slim,
      logger: options.logger,
    });
    this.informer.on((_event, namespace, previous) => {
      // Only Spillway's annotations matter: a namespace's other changes are not news.
      if (
        previous &&
        sameAnnotations(previous, namespace) &&
        previous.metadata.uid === namespace.metadata.uid
      ) {
        return;
      }
      for (const listener of this.listeners) listener(namespace);
    });
  }

  start(signal: AbortSignal): void {
    if (this.started) return;
    this.started = true;
    this.informer.start(signal);
  }

  get synced(): boolean {
    return this.informer.hasSynced;
  }

  get ready(): Promise<void> {
    return this.informer.ready;
  }

  get(name: string): HostNamespace | undefined {
    return this.informer.get(name);
  }

  list(): HostNamespace[] {
    return this.informer.list();
  }

  /** Called when a namespace appears, goes, or its Spillway annotations change; returns the unsubscribe function. */
  subscribe(listener: HostNamespaceListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

function slim(namespace: V1Namespace): HostNamespace {
  const annotations: Record<string, string> = {};
  for (const [key, value] of Object.entries(namespace.metadata?.annotations ?? {})) {
    if (key.startsWith('spillway.dev/')) annotations[key] = value;
  }
  const created = namespace.metadata?.creationTimestamp;
  return {
    metadata: {
      name: namespace.metadata?.name ?? '',
      uid: namespace.metadata?.uid,
      resourceVersion: namespace.metadata?.resourceVersion,
      creationTimestamp: created ? new Date(created as unknown as string).toISOString() : undefined,
      annotations,
    },
  };
}

function sameAnnotations(a: HostNamespace, b: HostNamespace): boolean {
  const x = a.metadata.annotations;
  const y = b.metadata.annotations;
  const keys = Object.keys(x);
  return keys.length === Object.keys(y).length && keys.every((k) => x[k] === y[k]);
}
