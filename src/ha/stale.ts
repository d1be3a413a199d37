// The leader's housekeeping of high-availability Leases: a remote removed while no replica owned it
// (its owner died, then its Secret was deleted) leaves a Lease and a virtual node nobody will drain;
// replicas that died leave their replica Leases. Only what this installation created is touched: its
// Leases in its namespace, and nodes named by them that carry this host cluster's ownership marks.
import type { V1Lease, V1Node } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { isNotFound } from '../kube/errors.ts';
import { isOwnedBy } from '../node/forge.ts';
import { ANNOTATION_LEASE_NODE, ANNOTATION_LEASE_REMOTE, LABEL_HA_LEASE, type LeaseBook } from './leases.ts';

export interface StaleLeases {
  /** Remotes no replica knows any more, whose Lease has been free for two lease durations. */
  readonly remotes: readonly { readonly lease: string; readonly remote: string; readonly node?: string }[];
  /** Replicas gone for ten lease durations. */
  readonly replicas: readonly string[];
}

/** What is stale (pure): `freeFor` says how long each Lease has been free (undefined: held). */
export function staleLeases(
  leases: readonly V1Lease[],
  freeFor: (name: string) => number | undefined,
  known: ReadonlySet<string>,
  durationMs: number,
): StaleLeases {
  const remotes: { lease: string; remote: string; node?: string }[] = [];
  const replicas: string[] = [];
  for (const lease of leases) {
    const name = lease.metadata?.name ?? '';
    const free = freeFor(name);
    if (free === undefined) continue;
    const role = lease.metadata?.labels?.[LABEL_HA_LEASE];
    const remote = lease.metadata?.annotations?.[ANNOTATION_LEASE_REMOTE];
    if (role === 'remote' && remote && !known.has(remote) && free >= 2 * durationMs) {
      remotes.push({ lease: name, remote, node: lease.metadata?.annotations?.[ANNOTATION_LEASE_NODE] });
    } else if (role === 'replica' && free > 10 * durationMs) {
      replicas.push(name);
    }
  }
  return { remotes, replicas };
}

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
  const { book, host, logger } = options;
  const leases = [...book.list('remote'), ...book.list('replica')];
  const stale = staleLeases(leases, (name) => book.freeFor(name), options.known, options.durationMs);
  for (const { lease, remote, node: nodeName } of stale.remotes) {
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
    await book.delete(lease);
  }
  for (const lease of stale.replicas) await book.delete(lease);
}
