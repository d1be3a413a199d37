// The high-availability Leases in Spillway's namespace, as this replica sees them: one per remote
// (who owns it), one per replica (who is alive, and where its kubelet API listens) and one for the
// leader (shared work). Expiry is judged as client-go's leader election judges it: a Lease is
// expired once it has not changed for its duration on *this* process's clock since we saw it change,
// so clock skew between replicas never lets two of them hold it. Writes are compare-and-swap on the
// resourceVersion, on the host client's heartbeat lane (pod work never delays them).
import { createHash } from 'node:crypto';
import type { V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { isAlreadyExists, isConflict, isNotFound } from '../kube/errors.ts';
import { Informer, trimMetadata } from '../kube/informer.ts';
import { microTime } from '../node/lease.ts';

export const LABEL_HA_LEASE = 'spillway.dev/ha-lease';
export type LeaseRole = 'remote' | 'replica' | 'leader';
export const ANNOTATION_LEASE_NODE = 'spillway.dev/node-name';
export const ANNOTATION_LEASE_REMOTE = 'spillway.dev/remote';
export const ANNOTATION_KUBELET_ENDPOINT = 'spillway.dev/kubelet-endpoint';
export const LEADER_LEASE = 'spillway-leader';
/** Replicas' clocks may differ by this much before a long-dead Lease is recognised by its renew time. */
const MAX_CLOCK_SKEW_MS = 30_000;

export function remoteLeaseName(remote: string): string {
  return `spillway-remote-${remote}`;
}

export function replicaLeaseName(identity: string): string {
  return `spillway-replica-${createHash('sha256').update(identity).digest('hex').slice(0, 12)}`;
}

export function leasesPath(namespace: string): string {
  return `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`;
}

interface Observation {
  readonly lease: V1Lease;
  /** performance.now() when the holder or renew time last changed, as far as we saw. */
  readonly changedAt: number;
}

export interface LeaseBookOptions {
  readonly host: ClusterClient;
  readonly namespace: string;
  readonly identity: string;
  readonly durationSeconds: number;
  readonly logger: Logger;
}

const signature = (lease: V1Lease) => `${lease.spec?.holderIdentity ?? ''}|${lease.spec?.renewTime ?? ''}`;

export class LeaseBook {
  readonly informer: Informer<V1Lease>;
  private readonly options: LeaseBookOptions;
  private readonly seen = new Map<string, Observation>();
  /** Our last written copy of each Lease we hold (the informer may not show it yet). */
  private readonly mine = new Map<string, V1Lease>();

  constructor(options: LeaseBookOptions) {
    this.options = options;
    this.informer = new Informer<V1Lease>({
      name: 'host/ha-leases',
      client: options.host,
      path: leasesPath(options.namespace),
      labelSelector: LABEL_HA_LEASE,
      transform: trimMetadata,
      logger: options.logger,
    });
    this.informer.on((event, lease) => {
      const name = lease.metadata?.name ?? '';
      if (event === 'delete') {
        this.seen.delete(name);
        return;
      }
      this.observe(lease);
    });
  }

  private observe(lease: V1Lease, now = performance.now()): void {
    const name = lease.metadata?.name ?? '';
    const previous = this.seen.get(name);
    const changed = !previous || signature(previous.lease) !== signature(lease);
    // An older copy (our own write arrived first) must not move the clock back.
    const older =
      previous &&
      Number(lease.metadata?.resourceVersion ?? 0) < Number(previous.lease.metadata?.resourceVersion ?? 0);
    if (older) return;
    this.seen.set(name, { lease, changedAt: changed ? now : (previous?.changedAt ?? now) });
  }

  start(signal: AbortSignal): void {
    this.informer.start(signal);
  }

  get ready(): Promise<void> {
    return this.informer.ready;
  }

  lease(name: string): V1Lease | undefined {
    return this.seen.get(name)?.lease;
  }

  list(role: LeaseRole): V1Lease[] {
    return [...this.seen.values()]
      .map((o) => o.lease)
      .filter((lease) => lease.metadata?.labels?.[LABEL_HA_LEASE] === role);
  }

  /** Milliseconds since the Lease became free (no holder, or expired); undefined while it is held. */
  freeFor(name: string, now = performance.now()): number | undefined {
    const observation = this.seen.get(name);
    if (!observation) return Number.POSITIVE_INFINITY;
    const spec = observation.lease.spec ?? {};
    if (!spec.holderIdentity) return now - observation.changedAt;
    const durationMs = (spec.leaseDurationSeconds ?? this.options.durationSeconds) * 1000;
    const expiredFor = now - observation.changedAt - durationMs;
    if (expiredFor > 0) return expiredFor;
    // Renewed long ago by every reasonable clock: a holder that died before we started.
    const renewed = Date.parse(String(spec.renewTime ?? ''));
    if (Number.isFinite(renewed) && Date.now() - renewed > durationMs + MAX_CLOCK_SKEW_MS) return 0;
    return undefined;
  }

  /** The live holder of a Lease (undefined when free). */
  holder(name: string): string | undefined {
    return this.freeFor(name) === undefined
      ? (this.lease(name)?.spec?.holderIdentity ?? undefined)
      : undefined;
  }

  private request() {
    return { lane: 'heartbeat' as const, attempts: 1, timeoutMs: 5000 };
  }

  /**
   * Takes a free Lease (compare-and-swap against the copy we saw free). Resolves false when another
   * replica was faster.
   */
  async acquire(name: string, role: LeaseRole, annotations: Record<string, string> = {}): Promise<boolean> {
    const { host, namespace, identity, durationSeconds } = this.options;
    const now = microTime();
    const current = this.lease(name);
    const spec = {
      holderIdentity: identity,
      leaseDurationSeconds: durationSeconds,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: (current?.spec?.leaseTransitions ?? 0) + (current?.spec?.holderIdentity ? 1 : 0),
    };
    const metadata = {
      name,
      namespace,
      labels: { 'app.kubernetes.io/name': 'spillway', [LABEL_HA_LEASE]: role },
      annotations,
    };
    try {
      const written = current
        ? await host.replace<V1Lease>(
            `${leasesPath(namespace)}/${name}`,
            {
              ...current,
              metadata: {
                ...current.metadata,
                ...metadata,
                annotations: { ...current.metadata?.annotations, ...annotations },
              },
              spec: { ...current.spec, ...spec },
            },
            this.request(),
          )
        : await host.create<V1Lease>(
            leasesPath(namespace),
            { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata, spec },
            this.request(),
          );
      this.mine.set(name, written);
      this.observe(written);
      return true;
    } catch (error) {
      if (isConflict(error) || isAlreadyExists(error)) return false;
      throw error;
    }
  }

  /** Renews a Lease we hold. Resolves false when it turns out another replica holds it (or it is gone). */
  async renew(name: string): Promise<boolean> {
    const { host, namespace, identity } = this.options;
    const path = `${leasesPath(namespace)}/${name}`;
    let ours = this.mine.get(name) ?? this.lease(name);
    for (let attempt = 0; attempt < 2 && ours; attempt++) {
      if (ours.spec?.holderIdentity !== identity) break;
      try {
        const written = await host.replace<V1Lease>(
          path,
          { ...ours, spec: { ...ours.spec, renewTime: microTime() } },
          this.request(),
        );
        this.mine.set(name, written);
        this.observe(written);
        return true;
      } catch (error) {
        if (isNotFound(error)) break;
        if (!isConflict(error)) throw error;
        // Someone wrote it: still ours (an annotation changed) or taken over?
        ours = await host.get<V1Lease>(path, this.request());
        this.observe(ours);
      }
    }
    this.mine.delete(name);
    return false;
  }

  /** Gives a Lease up at once (no wait for its expiry): the next replica may take it right away. */
  async release(name: string): Promise<void> {
    const ours = this.mine.get(name);
    this.mine.delete(name);
    if (!ours) return;
    const { host, namespace } = this.options;
    try {
      const written = await host.replace<V1Lease>(
        `${leasesPath(namespace)}/${name}`,
        {
          ...ours,
          spec: { ...ours.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime() },
        },
        this.request(),
      );
      this.observe(written);
    } catch (error) {
      if (!isConflict(error) && !isNotFound(error)) throw error;
    }
  }

  /** Deletes a Lease, only the version we saw (resourceVersion precondition). */
  async delete(name: string): Promise<void> {
    const current = this.mine.get(name) ?? this.lease(name);
    this.mine.delete(name);
    if (!current) return;
    try {
      await this.options.host.delete(`${leasesPath(this.options.namespace)}/${name}`, {
        preconditions: { resourceVersion: current.metadata?.resourceVersion },
      });
    } catch (error) {
      if (!isConflict(error) && !isNotFound(error)) throw error;
    }
  }
}
