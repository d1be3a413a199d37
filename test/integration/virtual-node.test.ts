// The virtual node against real clusters: registration, labels, taint, capacity and how capacity
// follows the remote cluster (nodes added, cordoned, deleted; other tenants' pods; extended resources).
import { PatchStrategy, setHeaderOptions, type V1Node } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { parseQuantity } from '../../src/kube/quantity.ts';
import { createSimulatedNode } from '../cluster/bootstrap.ts';
import { clusters } from '../cluster/fixture.ts';
import { freePort } from '../cluster/ports.ts';
import { condition, kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';

const suffix = uniqueSuffix();
const remoteName = `vn-${suffix}`;
const nodeName = `spillway-vn-${suffix}`;
// The same remote cluster configured a second time, as another virtual node (a second share of it).
const twinRemoteName = `vn-twin-${suffix}`;
const twinNodeName = `spillway-vn-twin-${suffix}`;
const namespace = `vn-${suffix}`;
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
let spillway: Spillway;
let kubeletPort: number;

const readNode = () => host.core.readNode({ name: nodeName });
const allocatable = (node: V1Node, resource: string) =>
  parseQuantity(node.status?.allocatable?.[resource] ?? '0');

/** What the remote's own pods (other tests' leftovers, system pods) use, so assertions are exact. */
async function remoteUsage(): Promise<{ cpu: bigint; memory: bigint; pods: bigint }> {
  const pods = await remote.core.listPodForAllNamespaces({
    fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed',
  });
  let cpu = 0n;
  let memory = 0n;
  let count = 0n;
  for (const pod of pods.items) {
    if (!pod.spec?.nodeName?.startsWith('remote-node-')) continue;
    count++;
    for (const c of pod.spec.containers) {
      cpu += parseQuantity(c.resources?.requests?.cpu ?? '0');
      memory += parseQuantity(c.resources?.requests?.memory ?? '0');
    }
  }
  return { cpu, memory, pods: count * 1_000_000_000n };
}

async function waitForAllocatable(resource: string, expected: bigint): Promise<V1Node> {
  return waitFor(`${resource} allocatable ${expected}`, async () => {
    const node = await readNode();
    return allocatable(node, resource) === expected ? node : undefined;
  });
}

beforeAll(async () => {
  await remote.core.createNamespace({ body: { metadata: { name: namespace } } });
  kubeletPort = await freePort();
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    kubeletPort,
    remotes: [
      { name: remoteName, kubeconfig: clusters.remote.kubeconfig, nodeName, labels: { team: 'burst' } },
      { name: twinRemoteName, kubeconfig: clusters.remote.kubeconfig, nodeName: twinNodeName },
    ],
  });
});

afterAll(async () => {
  await spillway?.stop();
  await host.core.deleteNode({ name: nodeName }).catch(() => {});
  await host.core.deleteNode({ name: twinNodeName }).catch(() => {});
  await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
});

describe('the virtual node', () => {
  it('registers with the labels, taint, addresses and versions of an honest node', async () => {
    const node = await waitFor('node Ready', async () => {
      const current = await readNode();
      return condition(current, 'Ready')?.status === 'True' ? current : undefined;
    });
    expect(node.metadata?.labels).toMatchObject({
      type: 'virtual-kubelet',
      'kubernetes.io/role': 'agent',
      'kubernetes.io/hostname': nodeName,
      'kubernetes.io/os': 'linux',
      'kubernetes.io/arch': 'amd64',
      'spillway.dev/cluster': remoteName,
      // shared by every remote node, so a nodeSelector on the region lands here
      'topology.kubernetes.io/region': 'region-remote',
      team: 'burst',
    });
    // zones differ between remote nodes: not a shared label
    expect(node.metadata?.labels?.['topology.kubernetes.io/zone']).toBeUndefined();
    // The TaintNodesByCondition admission puts not-ready on every new node until the node lifecycle
    // controller sees it Ready; then only Spillway's taint remains.
    const settled = await waitFor('only Spillway’s taint', async () => {
      const current = await readNode();
      return current.spec?.taints?.length === 1 ? current : undefined;
    });
    expect(settled.spec?.taints).toEqual([
      { key: 'virtual-kubelet.io/provider', value: 'spillway', effect: 'NoSchedule' },
    ]);
    expect(node.status?.addresses).toEqual([{ type: 'InternalIP', address: '127.0.0.1' }]);
    expect(node.status?.daemonEndpoints?.kubeletEndpoint?.Port).toBe(kubeletPort);
    expect(node.status?.nodeInfo?.kubeletVersion).toMatch(/^v1\.36\.\d+-spillway\.\d+\.\d+\.\d+$/);
    expect(node.metadata?.annotations).toMatchObject({
      'spillway.dev/remote-kubernetes-version': 'v1.36.3',
      'spillway.dev/remote-node-count': '3',
      'spillway.dev/owner': `host/${remoteName}`,
    });
    const types = (node.status?.conditions ?? []).map((c) => `${c.type}=${c.status}`).sort();
    expect(types).toEqual([
      'DiskPressure=False',
      'MemoryPressure=False',
      'NetworkUnavailable=False',
      'PIDPressure=False',
      'Ready=True',
    ]);
    expect(condition(node, 'Ready')?.message).toContain('3 of 3 nodes schedulable');

    const usage = await remoteUsage();
    expect(allocatable(node, 'cpu')).toBe(parseQuantity('12') - usage.cpu);
    expect(allocatable(node, 'memory')).toBe(parseQuantity('48Gi') - usage.memory);
    expect(allocatable(node, 'pods')).toBe(parseQuantity('330') - usage.pods);
    expect(node.status?.capacity).toEqual(node.status?.allocatable);

    // The lease follows the node's registration (it is owned by the node, so it needs its UID).
    const lease = await waitFor('node lease', () =>
      host.coordination
        .readNamespacedLease({ name: nodeName, namespace: 'kube-node-lease' })
        .catch(() => undefined),
    );
    expect(lease.spec?.holderIdentity).toBe(nodeName);
    expect(lease.spec?.leaseDurationSeconds).toBe(40);
    expect(lease.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'Node',
      name: nodeName,
      uid: node.metadata?.uid,
    });
  });

  it('follows a remote node being added (with an extended resource), cordoned and deleted', async () => {
    const before = await waitForAllocatable('cpu', parseQuantity('12') - (await remoteUsage()).cpu);
    const cpu = allocatable(before, 'cpu');
    const extra = `remote-extra-${suffix}`;
    await createSimulatedNode(clusters.remote.kubeconfig, {
      name: extra,
      cpu: '4',
      memory: '16Gi',
      pods: '110',
      labels: {
        'topology.kubernetes.io/region': 'region-remote',
        'topology.kubernetes.io/zone': 'region-remote-z',
      },
      extendedResources: { 'nvidia.com/gpu': '2' },
    });
    try {
      const added = await waitForAllocatable('cpu', cpu + parseQuantity('4'));
      expect(added.status?.allocatable?.['nvidia.com/gpu']).toBe('2');
      expect(added.metadata?.annotations?.['spillway.dev/remote-node-count']).toBe('4');

      await remote.core.patchNode(
        { name: extra, body: { spec: { unschedulable: true } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      const cordoned = await waitForAllocatable('cpu', cpu);
      expect(cordoned.status?.allocatable?.['nvidia.com/gpu']).toBeUndefined();
      expect(cordoned.metadata?.annotations?.['spillway.dev/remote-schedulable-node-count']).toBe('3');
    } finally {
      await remote.core.deleteNode({ name: extra });
    }
    const deleted = await waitFor('node count back to 3', async () => {
      const node = await readNode();
      return node.metadata?.annotations?.['spillway.dev/remote-node-count'] === '3' ? node : undefined;
    });
    expect(allocatable(deleted, 'cpu')).toBe(cpu);
  });

  it("subtracts other tenants' pods but not its own delegates", async () => {
    const usage = await remoteUsage();
    const cpu = parseQuantity('12') - usage.cpu;
    const memory = parseQuantity('48Gi') - usage.memory;
    await waitForAllocatable('cpu', cpu);
    const requests = { cpu: '1500m', memory: '1Gi' };
    // A pod that looks like this Spillway's own delegate is already accounted for on the host side.
    await remote.core.createNamespacedPod({
      namespace,
      body: {
        metadata: {
          name: 'own-delegate',
          labels: {
            'spillway.dev/managed-by': 'spillway',
            'spillway.dev/host-cluster': 'host',
            'spillway.dev/virtual-node': nodeName,
          },
        },
        spec: { containers: [{ name: 'main', image: 'busybox', resources: { requests } }] },
      },
    });
    await remote.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'other-tenant' },
        spec: { containers: [{ name: 'main', image: 'busybox', resources: { requests } }] },
      },
    });
    const node = await waitForAllocatable('cpu', cpu - parseQuantity('1500m'));
    expect(allocatable(node, 'memory')).toBe(memory - parseQuantity('1Gi'));
    expect(allocatable(node, 'pods')).toBe(parseQuantity('330') - usage.pods - parseQuantity('1'));

    await remote.core.deleteNamespacedPod({ name: 'other-tenant', namespace, gracePeriodSeconds: 0 });
    await waitForAllocatable('cpu', cpu);
    await remote.core.deleteNamespacedPod({ name: 'own-delegate', namespace, gracePeriodSeconds: 0 });
  });

  it('coalesces a burst of remote changes into few status writes, and writes nothing when nothing changes', async () => {
    const remoteCluster = spillway.registry.get(remoteName);
    if (!remoteCluster) throw new Error('remote not running');
    const cpu = parseQuantity('12') - (await remoteUsage()).cpu;
    await waitForAllocatable('cpu', cpu);
    const writesBefore = remoteCluster.node.statusWrites;
    const count = 40;
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        remote.core.createNamespacedPod({
          namespace,
          body: {
            metadata: { name: `burst-${i}` },
            spec: {
              containers: [{ name: 'main', image: 'busybox', resources: { requests: { cpu: '100m' } } }],
            },
          },
        }),
      ),
    );
    await waitForAllocatable('cpu', cpu - parseQuantity('4'));
    const burstWrites = remoteCluster.node.statusWrites - writesBefore;
    expect(burstWrites).toBeGreaterThan(0);
    expect(burstWrites).toBeLessThan(count / 4);

    // Pods becoming Running (status churn, no change in requests) and quiet time write nothing.
    await waitFor('burst pods Running', async () => {
      const pods = await remote.core.listNamespacedPod({ namespace });
      return pods.items.filter((p) => p.status?.phase === 'Running').length >= count ? true : undefined;
    });
    const settled = remoteCluster.node.statusWrites;
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(remoteCluster.node.statusWrites).toBe(settled);
    await remote.core.deleteCollectionNamespacedPod({ namespace, gracePeriodSeconds: 0 });
  });

  it("watches a remote configured twice once, each node counting the other's delegates as a tenant's", async () => {
    expect(spillway.registry.watchedClusters).toBe(1);
    const cpuOf = async (name: string) => allocatable(await host.core.readNode({ name }), 'cpu');
    const gap = () =>
      waitFor('both nodes settled', async () => {
        const [own, twin] = await Promise.all([cpuOf(nodeName), cpuOf(twinNodeName)]);
        const [ownAgain, twinAgain] = await Promise.all([cpuOf(nodeName), cpuOf(twinNodeName)]);
        return own === ownAgain && twin === twinAgain ? own - twin : undefined;
      });
    await waitFor('twin node registered', () => cpuOf(twinNodeName).catch(() => undefined));
    await remote.core.createNamespacedPod({
      namespace,
      body: {
        metadata: {
          name: 'twin-delegate',
          labels: {
            'spillway.dev/managed-by': 'spillway',
            'spillway.dev/host-cluster': 'host',
            'spillway.dev/virtual-node': nodeName,
          },
        },
        spec: {
          containers: [{ name: 'main', image: 'busybox', resources: { requests: { cpu: '1500m' } } }],
        },
      },
    });
    // Only the first node's delegate: the twin subtracts it, the first node does not.
    await waitFor('twin subtracts the delegate', async () =>
      (await gap()) === parseQuantity('1500m') ? true : undefined,
    );

    // The twin handed over: the first node still sees the remote through the view they shared.
    await spillway.registry.stop(twinRemoteName);
    expect(spillway.registry.watchedClusters).toBe(1);
    const before = await waitFor('first node settled', async () => {
      const cpu = await cpuOf(nodeName);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      return cpu === (await cpuOf(nodeName)) ? cpu : undefined;
    });
    await remote.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'tenant-after-twin' },
        spec: { containers: [{ name: 'main', image: 'busybox', resources: { requests: { cpu: '700m' } } }] },
      },
    });
    await waitForAllocatable('cpu', before - parseQuantity('700m'));
    await remote.core.deleteCollectionNamespacedPod({ namespace, gracePeriodSeconds: 0 });
  });
});
