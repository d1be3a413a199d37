// The leader's housekeeping of high-availability Leases: a remote removed while no replica owned it
// (its owner died, then its Secret was deleted) leaves a Lease and a virtual node nobody will drain;
// replicas that died leave their replica Leases. Only what this installation created is touched: its
// Leases in its namespace, and nodes named by them that carry this host cluster's ownership marks.
import type { V1Node } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { isNotFound } from '../kube/errors.ts';
import { isOwnedBy } from '../node/forge.ts';
import { ANNOTATION_LEASE_NODE, ANNOTATION_LEASE_REMOTE, type LeaseBook } from './leases.ts';

export interface StaleLeaseOptions {
  readonly book: LeaseBook;
  readonly host: ClusterClient;
  readonly hostClusterName: string;
  /** Every remote of the catalog. */
  readonly known: ReadonlySet<string>;
  readonly durationMs: number;
  readonly logger: Logger;
}

export async function collectStaleLeases(options: StaleLeaseOptions): Promise<void> {
  const { book, host, known, durationMs, logger } = options;
  for (const lease of book.list('remote')) {
    const name = lease.metadata?.name ?? '';
    const remote = lease.metadata?.annotations?.[ANNOTATION_LEASE_REMOTE];
    const freeFor = book.freeFor(name);
    if (!remote || known.has(remote) || freeFor === undefined || freeFor < 2 * durationMs) continue;
    const nodeName = lease.metadata?.annotations?.[ANNOTATION_LEASE_NODE];
    if (nodeName) {
      const node = await host.get<V1Node>(`/api/v1/nodes/${nodeName}`).catch((error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      });
      if (node && isOwnedBy(node, options.hostClusterName)) {
        logger.warn(
          { remote, node: nodeName },
          'remote removed while no replica owned it: deleting its virtual node (its delegates cannot be drained without its credentials)',
        );
        await host
          .delete(`/api/v1/nodes/${nodeName}`, { preconditions: { uid: node.metadata?.uid } })
          .catch((error: unknown) => {
            if (!isNotFound(error)) throw error;
          });
      }
    }
    await book.delete(name);
  }
  for (const lease of book.list('replica')) {
    const freeFor = book.freeFor(lease.metadata?.name ?? '');
    if (freeFor !== undefined && freeFor > 10 * durationMs) await book.delete(lease.metadata?.name ?? '');
  }
}
