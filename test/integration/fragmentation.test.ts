// No black holes: a pod that fits the virtual node's total but no single remote node is refused as a
// kubelet would (OutOfcpu), its replacement waits in the host scheduler instead of looping through
// create/refuse (the node's advertised CPU is capped while the fragmentation lasts), and it runs as
// soon as a remote node has room.
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { formatQuantity, parseQuantity } from '../../src/kube/quantity.ts';
import { clusters } from '../cluster/fixture.ts';
import { kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import { createDeployment, pinnedSpec, podsWithLabel } from '../support/workloads.ts';

const suffix = uniqueSuffix();
const remoteName = `frag-${suffix}`;
const nodeName = `spillway-frag-${suffix}`;
const namespace = `frag-${suffix}`;
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
let spillway: Spillway;

/** Free CPU on each remote node, from what the pods there request. */
async function remoteFreeCpu(): Promise<Map<string, bigint>> {
  const nodes = (await remote.core.listNode()).items;
  const pods = await remote.core.listPodForAllNamespaces({
    fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed',
  });
  const free = new Map<string, bigint>();
  for (const node of nodes) {
    const name = node.metadata?.name ?? '';
    let used = 0n;
    for (const pod of pods.items.filter((p) => p.spec?.nodeName === name)) {
      for (const c of pod.spec?.containers ?? []) used += parseQuantity(c.resources?.requests?.cpu ?? '0');
    }
    free.set(name, parseQuantity(node.status?.allocatable?.cpu ?? '0') - used);
  }
  return free;
}

beforeAll(async () => {
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  await remote.core.createNamespace({ body: { metadata: { name: namespace } } });
  // Another tenant of the remote leaves exactly 3 CPUs free on each node: 9 in all, 3 at most on one.
  for (const [node, free] of await remoteFreeCpu()) {
    const filler = free - parseQuantity('3');
    if (filler <= 0n) continue;
    await remote.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: `filler-${node}`, labels: { app: 'filler' } },
        spec: {
          nodeName: node,
          containers: [
            { name: 'main', image: 'filler', resources: { requests: { cpu: formatQuantity(filler) } } },
          ],
        },
      },
    });
  }
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    remotes: [{ name: remoteName, kubeconfig: clusters.remote.kubeconfig, nodeName }],
  });
});

afterAll(async () => {
  await host.core.deleteNamespace({ name: namespace }).catch(() => {});
  await spillway?.stop();
  await host.core.deleteNode({ name: nodeName }).catch(() => {});
  await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
});

describe('a pod that fits the sum but no single remote node', () => {
  it('is refused with OutOfcpu once, its replacement waits, and runs when a node has room', async () => {
    await waitFor('virtual node advertises 9 CPUs or more', async () => {
      const node = await host.core.readNode({ name: nodeName }).catch(() => undefined);
      return parseQuantity(node?.status?.allocatable?.cpu ?? '0') >= parseQuantity('9') ? true : undefined;
    });
    await createDeployment(
      host,
      namespace,
      'big',
      1,
      pinnedSpec(remoteName, {}, { resources: { requests: { cpu: '4' } } }),
    );
    const refused = await waitFor('the first pod refused', async () =>
      (await podsWithLabel(host, namespace, 'app=big')).find((p) => p.status?.phase === 'Failed'),
    );
    expect(refused.status?.reason).toBe('OutOfcpu');
    expect(refused.status?.message).toMatch(/requested 4, at most 3 free on one node/);

    // The replacement is not sent to the virtual node: it waits in the host scheduler, and no further
    // pod is refused (no create/refuse loop).
    const pending = await waitFor('the replacement waiting in the host scheduler', async () => {
      const pods = await podsWithLabel(host, namespace, 'app=big');
      return pods.find(
        (p: V1Pod) =>
          p.status?.phase === 'Pending' &&
          !p.spec?.nodeName &&
          p.status.conditions?.some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable'),
      );
    });
    const node = await host.core.readNode({ name: nodeName });
    expect(parseQuantity(node.status?.allocatable?.cpu ?? '0')).toBeLessThan(parseQuantity('4'));
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const failed = (await podsWithLabel(host, namespace, 'app=big')).filter(
      (p) => p.status?.phase === 'Failed',
    );
    expect(failed).toHaveLength(1);
    expect((await remote.core.listNamespacedPod({ namespace, labelSelector: 'app=big' })).items).toEqual([]);

    // The other tenant leaves one node: the cap lifts and the waiting pod runs there.
    const fillers = (await remote.core.listNamespacedPod({ namespace, labelSelector: 'app=filler' })).items;
    await remote.core.deleteNamespacedPod({
      namespace,
      name: fillers[0]?.metadata?.name ?? '',
      gracePeriodSeconds: 0,
    });
    const running = await waitFor('the replacement Running on the virtual node', async () => {
      const pod = await host.core.readNamespacedPod({ namespace, name: pending.metadata?.name ?? '' });
      return pod.status?.phase === 'Running' ? pod : undefined;
    });
    expect(running.spec?.nodeName).toBe(nodeName);
  });
});
