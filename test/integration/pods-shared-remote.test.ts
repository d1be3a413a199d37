// Two host clusters sharing one remote cluster never touch each other's pods, even with identically
// named pods in the same namespace: the second gets a clear conflict reason instead of stealing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { parseQuantity } from '../../src/kube/quantity.ts';
import { clusters } from '../cluster/fixture.ts';
import type { ClusterInfo } from '../cluster/provider.ts';
import { type Kube, kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import { delegatesCollected, pinnedSpec, waitForNodeReady, waitForRunning } from '../support/workloads.ts';

const suffix = uniqueSuffix();
const namespace = `shared-${suffix}`;
const remoteA = `a-${suffix}`;
const remoteB = `b-${suffix}`;
const nodeA = `spillway-a-${suffix}`;
const nodeB = `spillway-b-${suffix}`;
const remote = kube(clusters.remote.kubeconfig);
const hostA = kube(clusters.host.kubeconfig);
let hostBInfo: ClusterInfo;
let hostB: Kube;
let spillwayA: Spillway;
let spillwayB: Spillway;

async function ready(k: Kube, name: string) {
  await waitForNodeReady(k, name);
}

beforeAll(async () => {
  hostBInfo = await clusters.ensure('host-b', 'host');
  hostB = kube(hostBInfo.kubeconfig);
  for (const k of [hostA, hostB]) await k.core.createNamespace({ body: { metadata: { name: namespace } } });
  spillwayA = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    hostClusterName: 'host',
    remotes: [{ name: remoteA, kubeconfig: clusters.remote.kubeconfig, nodeName: nodeA }],
  });
  spillwayB = await startSpillway({
    hostKubeconfig: hostBInfo.kubeconfig,
    hostClusterName: 'host-b',
    remotes: [{ name: remoteB, kubeconfig: clusters.remote.kubeconfig, nodeName: nodeB }],
  });
  await ready(hostA, nodeA);
  await ready(hostB, nodeB);
});

afterAll(async () => {
  for (const k of [hostA, hostB]) await k.core.deleteNamespace({ name: namespace }).catch(() => {});
  await delegatesCollected(remote, namespace);
  await spillwayA?.stop();
  await spillwayB?.stop();
  await hostA.core.deleteNode({ name: nodeA }).catch(() => {});
  await hostB?.core.deleteNode({ name: nodeB }).catch(() => {});
  await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
});

describe('two host clusters on one remote', () => {
  it('gives the second of two same-named pods a conflict reason and leaves the first one’s delegate alone', async () => {
    await hostA.core.createNamespacedPod({
      namespace,
      body: { metadata: { name: 'same', labels: { app: 'same' } }, spec: pinnedSpec(remoteA) },
    });
    const [podA] = await waitForRunning(hostA, namespace, 'app=same', 1);
    const delegate = await remote.core.readNamespacedPod({ name: 'same', namespace });
    expect(delegate.metadata?.labels?.['spillway.dev/host-cluster']).toBe('host');

    await hostB.core.createNamespacedPod({
      namespace,
      body: { metadata: { name: 'same', labels: { app: 'same' } }, spec: pinnedSpec(remoteB) },
    });
    const refused = await waitFor('conflict reason on host-b’s pod', async () => {
      const pod = await hostB.core.readNamespacedPod({ name: 'same', namespace });
      const condition = pod.status?.conditions?.find((c) => c.type === 'spillway.dev/Delegated');
      return condition?.reason === 'DelegateNameConflict' ? { pod, condition } : undefined;
    });
    expect(refused.pod.status?.phase).toBe('Pending');
    expect(refused.condition.message).toContain('is not this Spillway');
    const events = await hostB.core.listNamespacedEvent({
      namespace,
      fieldSelector: 'involvedObject.name=same',
    });
    expect(events.items.some((e) => e.reason === 'DelegateNameConflict')).toBe(true);

    // Deleting host-b's pod never touches host's delegate.
    await hostB.core.deleteNamespacedPod({ name: 'same', namespace });
    await waitFor('host-b pod gone', async () =>
      (await hostB.core.readNamespacedPod({ name: 'same', namespace }).catch(() => undefined))
        ? undefined
        : true,
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = await remote.core.readNamespacedPod({ name: 'same', namespace });
    expect(after.metadata?.uid).toBe(delegate.metadata?.uid);
    expect(after.metadata?.deletionTimestamp).toBeUndefined();
    const stillA = await hostA.core.readNamespacedPod({ name: 'same', namespace });
    expect(stillA.metadata?.uid).toBe(podA?.metadata?.uid);
    expect(stillA.status?.phase).toBe('Running');
  });

  it('runs differently named pods of both, and each counts the other as a tenant', async () => {
    const allocatableA = async () =>
      parseQuantity((await hostA.core.readNode({ name: nodeA })).status?.allocatable?.cpu ?? '0');
    const before = await allocatableA();
    await hostB.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'only-b', labels: { app: 'only-b' } },
        spec: pinnedSpec(remoteB, {}, { resources: { requests: { cpu: '1' } } }),
      },
    });
    await waitForRunning(hostB, namespace, 'app=only-b', 1);
    await waitFor('host’s virtual node counts host-b’s delegate', async () =>
      (await allocatableA()) === before - parseQuantity('1') ? true : undefined,
    );
    const delegate = await remote.core.readNamespacedPod({ name: 'only-b', namespace });
    expect(delegate.metadata?.labels?.['spillway.dev/host-cluster']).toBe('host-b');
    // host's Spillway sees it, and leaves it alone.
    expect(spillwayA.registry.get(remoteA)?.pods.delegates.get(`${namespace}/only-b`)).toBeUndefined();
  });
});
