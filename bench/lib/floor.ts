// The bare-API floor: a minimal provider with no rate limits, no translation logic and no caches,
// doing only the writes mirroring cannot do without (the remote create when a host pod appears, the
// host status patch when its remote pod runs), plus a node and its lease renewed every 10 s. Measured
// the same way as Spillway, in the same run, on the same clusters: what is left of Spillway's figures
// above the floor's is what Spillway adds.
import type { V1Pod } from '@kubernetes/client-node';
import { messageOf } from '../../src/kube/errors.ts';
import { Informer } from '../../src/kube/informer.ts';
import { type BenchCluster, benchLogger, createOrKeep, deleteIfExists, namespaceOf } from './api.ts';
import { CONFIG_MAP } from './workload.ts';

export const FLOOR_NODE = 'bench-floor';

export class Floor {
  private readonly controller = new AbortController();
  private readonly host: BenchCluster;
  private readonly remote: BenchCluster;
  private readonly namespace: string;
  private readonly mirrored = new Set<string>();
  private readonly statused = new Set<string>();
  private renewTimer: NodeJS.Timeout | undefined;
  private leaseVersion: string | undefined;
  failures = 0;

  private constructor(host: BenchCluster, remote: BenchCluster, namespace: string) {
    this.host = host;
    this.remote = remote;
    this.namespace = namespace;
  }

  /** The floor's node (Ready, with a lease it renews) and remote namespace, before any pod. */
  static async start(host: BenchCluster, remote: BenchCluster, namespace: string): Promise<Floor> {
    const floor = new Floor(host, remote, namespace);
    await deleteIfExists(host.client, `/api/v1/nodes/${FLOOR_NODE}`);
    await host.client.create('/api/v1/nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: FLOOR_NODE, labels: { type: 'bench-floor' } },
      status: {
        conditions: [
          { type: 'Ready', status: 'True', reason: 'Bench', lastHeartbeatTime: new Date().toISOString() },
        ],
      },
    });
    await floor.renewLease();
    await createOrKeep(remote.client, '/api/v1/namespaces', namespaceOf(namespace));
    // The one reflected ConfigMap Spillway would create in this namespace.
    await createOrKeep(remote.client, `/api/v1/namespaces/${namespace}/configmaps`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: `${CONFIG_MAP}.bench.${FLOOR_NODE}` },
      data: { greeting: 'hello' },
    });
    const signal = floor.controller.signal;
    const hostPods = new Informer<V1Pod, V1Pod>({
      name: 'floor/host',
      client: host.client,
      path: `/api/v1/namespaces/${namespace}/pods`,
      cache: false,
      logger: benchLogger,
    });
    const remotePods = new Informer<V1Pod, V1Pod>({
      name: 'floor/remote',
      client: remote.client,
      path: `/api/v1/namespaces/${namespace}/pods`,
      cache: false,
      logger: benchLogger,
    });
    hostPods.on((_event, pod) => floor.onHostPod(pod));
    remotePods.on((_event, pod) => floor.onRemotePod(pod));
    hostPods.start(signal);
    remotePods.start(signal);
    await Promise.all([hostPods.ready, remotePods.ready]);
    const renew = () => {
      floor.renewTimer = setTimeout(() => void floor.renewLease().finally(renew), 10_000);
    };
    renew();
    return floor;
  }

  private async renewLease(): Promise<void> {
    const lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: FLOOR_NODE, namespace: 'kube-node-lease' },
      spec: {
        holderIdentity: FLOOR_NODE,
        leaseDurationSeconds: 40,
        renewTime: new Date().toISOString().replace('Z', '000Z'),
      },
    };
    const path = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases`;
    // A Lease is only replaced at a resourceVersion (without one the update is refused): the last one
    // written, as a kubelet keeps it; read again after a failure.
    const replace = async (resourceVersion: string) => {
      const written = await this.host.client.replace<{ metadata: { resourceVersion: string } }>(
        `${path}/${FLOOR_NODE}`,
        { ...lease, metadata: { ...lease.metadata, resourceVersion } },
        { lane: 'heartbeat' },
      );
      this.leaseVersion = written.metadata.resourceVersion;
    };
    try {
      if (this.leaseVersion === undefined) throw new Error('no resourceVersion yet');
      await replace(this.leaseVersion);
    } catch {
      this.leaseVersion = undefined;
      const current = await this.host.client
        .get<{ metadata: { resourceVersion: string } }>(`${path}/${FLOOR_NODE}`, { lane: 'heartbeat' })
        .catch(() => undefined);
      if (current) await replace(current.metadata.resourceVersion).catch(() => {});
      else await createOrKeep(this.host.client, path, lease).catch(() => {});
    }
  }

  private onHostPod(pod: V1Pod): void {
    const name = pod.metadata?.name as string;
    if (this.mirrored.has(name) || pod.metadata?.deletionTimestamp) return;
    this.mirrored.add(name);
    const containers = (pod.spec?.containers ?? []).map((c) => ({ name: c.name, image: c.image }));
    this.remote.client
      .create(`/api/v1/namespaces/${this.namespace}/pods`, { metadata: { name }, spec: { containers } })
      .catch((error) => {
        this.failures++;
        benchLogger.error({ pod: name, err: messageOf(error) }, 'floor: remote create failed');
      });
  }

  private onRemotePod(pod: V1Pod): void {
    const name = pod.metadata?.name as string;
    if (pod.status?.phase !== 'Running' || this.statused.has(name)) return;
    this.statused.add(name);
    const status = { phase: 'Running', podIP: pod.status.podIP, conditions: pod.status.conditions };
    this.host.client
      .patch(`/api/v1/namespaces/${this.namespace}/pods/${name}/status`, { status }, 'merge')
      .catch((error) => {
        this.failures++;
        benchLogger.error({ pod: name, err: messageOf(error) }, 'floor: host status failed');
      });
  }

  async stop(): Promise<void> {
    this.controller.abort();
    clearTimeout(this.renewTimer);
    await deleteIfExists(this.host.client, `/api/v1/nodes/${FLOOR_NODE}`);
  }
}
