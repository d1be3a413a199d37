// The node heartbeat: a coordination.k8s.io/v1 Lease in kube-node-lease, renewed on the host client's
// heartbeat lane so that rate limiting and bursts of pod work never delay it. It is renewed while
// Spillway runs, whatever the remote's health: a remote outage is reported through the Ready condition
// (honest, with a reason), not by letting the lease expire.
import type { V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { isConflict, isNotFound, messageOf } from '../kube/errors.ts';
import { leaseRenewed, leaseRenewFailed } from '../metrics/instruments.ts';

export const LEASE_NAMESPACE = 'kube-node-lease';

export interface LeaseOptions {
  readonly client: ClusterClient;
  readonly nodeName: string;
  readonly durationSeconds: number;
  readonly renewIntervalMs: number;
  readonly logger: Logger;
  /** The Node's UID, for the lease's owner reference (so the lease goes when the node goes). */
  readonly nodeUid: () => string | undefined;
}

/** Lease times are MicroTime: RFC 3339 with microseconds. */
export function microTime(date = new Date()): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaseHeartbeat {
  private readonly options: LeaseOptions;
  private lease: V1Lease | undefined;
  /** Successful renewals, for tests and metrics. */
  renewals = 0;
  lastRenewed: Date | undefined;

  constructor(options: LeaseOptions) {
    if (!options.nodeName) throw new Error('lease: missing node name');
    if (!(options.renewIntervalMs > 0)) throw new Error('lease: renew interval must be positive');
    this.options = options;
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${LEASE_NAMESPACE}/leases/${this.options.nodeName}`;
  }

  start(signal: AbortSignal): void {
    let failures = 0;
    const tick = async () => {
      if (signal.aborted) return;
      let delay = this.options.renewIntervalMs;
      try {
        if (this.options.nodeUid()) {
          const started = performance.now();
          await this.renew(signal);
          leaseRenewed('node', (performance.now() - started) / 1000);
          failures = 0;
        } else {
          // The node is still being registered; the lease follows it rather than racing it.
          delay = 200;
        }
      } catch (error) {
        if (signal.aborted) return;
        failures++;
        leaseRenewFailed('node');
        // Retry fast first (100 ms, doubling, at most 7 s), as the kubelet does.
        delay = Math.min(7000, 100 * 2 ** (failures - 1));
        this.options.logger.warn({ failures, err: messageOf(error) }, 'lease renewal failed');
      }
      if (!signal.aborted) setTimeout(tick, delay).unref();
    };
    void tick();
  }

  async renew(signal?: AbortSignal): Promise<void> {
    const { client, nodeName, durationSeconds } = this.options;
    const nodeUid = this.options.nodeUid();
    if (!nodeUid) throw new Error('node not registered yet');
    const spec = { holderIdentity: nodeName, leaseDurationSeconds: durationSeconds, renewTime: microTime() };
    const requestOptions = { lane: 'heartbeat' as const, attempts: 1, timeoutMs: 5000, signal };
    try {
      if (!this.lease) {
        this.lease = await client.get<V1Lease>(this.path, requestOptions);
      }
      const ownerReferences = [{ apiVersion: 'v1', kind: 'Node', name: nodeName, uid: nodeUid }];
      this.lease = await client.replace<V1Lease>(
        this.path,
        {
          ...this.lease,
          metadata: { ...this.lease.metadata, ownerReferences },
          spec: { ...this.lease.spec, ...spec },
        },
        requestOptions,
      );
    } catch (error) {
      if (isNotFound(error)) {
        this.lease = await client.create<V1Lease>(
          `/apis/coordination.k8s.io/v1/namespaces/${LEASE_NAMESPACE}/leases`,
          {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: {
              name: nodeName,
              namespace: LEASE_NAMESPACE,
              ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: nodeName, uid: nodeUid }],
            },
            spec: { ...spec, acquireTime: spec.renewTime },
          },
          requestOptions,
        );
      } else {
        // Re-read next time: someone else wrote the lease, or our copy is stale.
        if (isConflict(error)) this.lease = undefined;
        throw error;
      }
    }
    this.renewals++;
    this.lastRenewed = new Date();
  }
}
