// Remote namespaces for delegates: created when missing, labelled as Spillway-managed, and ready for
// pods (the remote's controller-manager has created the `default` ServiceAccount pods run as).
// Spillway never deletes a namespace: other host clusters or the remote's own users may share it.
// A namespace deleted under Spillway is noticed by the writes that fail in it: it is forgotten, and
// made again (once the old one has finished terminating) by the next write that needs it.
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Namespace } from '@kubernetes/client-node';
import type { ClusterClient } from '../kube/client.ts';
import { isAlreadyExists, isNamespaceTerminating, isNotFound, kubeStatusOf } from '../kube/errors.ts';
import { LABEL_MANAGED_BY, MANAGED_BY_VALUE } from '../ownership.ts';
import type { NamespaceEnsurer } from './execute.ts';

export class RemoteNamespaces implements NamespaceEnsurer {
  private readonly remote: ClusterClient;
  private readonly ready = new Set<string>();
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(remote: ClusterClient) {
    this.remote = remote;
  }

  /** Resolves when the namespace exists and has its default ServiceAccount. One request per namespace, however many pods. */
  ensure(namespace: string): Promise<void> {
    if (this.ready.has(namespace)) return Promise.resolve();
    let pending = this.inFlight.get(namespace);
    if (!pending) {
      pending = this.create(namespace).finally(() => this.inFlight.delete(namespace));
      this.inFlight.set(namespace, pending);
    }
    return pending;
  }

  /** Forgets a namespace (it was deleted remotely), so the next write creates it again. */
  forget(namespace: string): void {
    this.ready.delete(namespace);
  }

  /** Whether a write failed because its namespace is gone or being deleted. */
  isGone(error: unknown): boolean {
    const details = kubeStatusOf(error)?.details as { kind?: string } | undefined;
    if (isNotFound(error) && details?.kind === 'namespaces') return true;
    return isNamespaceTerminating(error);
  }

  private async create(namespace: string): Promise<void> {
    try {
      const existing = await this.remote.get<V1Namespace>(`/api/v1/namespaces/${namespace}`);
      if (existing.metadata?.deletionTimestamp) {
        throw new Error(`remote namespace ${namespace} is being deleted; waiting for it to go`);
      }
    } catch (error) {
      if (!isNotFound(error)) throw error;
      try {
        await this.remote.create('/api/v1/namespaces', {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: namespace, labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE } },
        });
      } catch (createError) {
        if (!isAlreadyExists(createError)) throw createError;
      }
    }
    // A new namespace gets its default ServiceAccount from the controller-manager a moment later;
    // pods created before that are refused by the ServiceAccount admission plugin.
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await this.remote.get(`/api/v1/namespaces/${namespace}/serviceaccounts/default`);
        break;
      } catch (error) {
        if (!isNotFound(error) || Date.now() > deadline) throw error;
        await sleep(100);
      }
    }
    this.ready.add(namespace);
  }
}
