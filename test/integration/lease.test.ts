// The heartbeat keeps its 10 s rhythm while a burst of pods bound to the virtual node floods the host,
// even with Spillway's host client throttled hard: leases travel on their own lane.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import { condition, kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';

const suffix = uniqueSuffix();
const nodeName = `spillway-lease-${suffix}`;
const namespace = `lease-${suffix}`;
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
let spillway: Spillway;

beforeAll(async () => {
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    extra: { host: { kubeconfig: clusters.host.kubeconfig, qps: 2, burst: 2 } },
    remotes: [{ name: `lease-${suffix}`, kubeconfig: clusters.remote.kubeconfig, nodeName }],
  });
});

afterAll(async () => {
  await host.core.deleteNamespace({ name: namespace }).catch(() => {});
  // The flooded pods were mirrored: let Spillway collect their delegates before it stops.
  await waitFor(
    'delegates collected',
    async () => {
      const left = await remote.core.listPodForAllNamespaces({
        labelSelector: `spillway.dev/virtual-node=${nodeName}`,
      });
      return left.items.length === 0 ? true : undefined;
    },
    { timeoutMs: 120_000 },
  ).catch(() => {});
  await spillway?.stop();
  await host.core.deleteNode({ name: nodeName }).catch(() => {});
  await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
});

describe('the node lease', () => {
  it('renews every 10 s while 500 pod events flood the host', async () => {
    await waitFor('node Ready', async () => {
      const node = await host.core.readNode({ name: nodeName }).catch(() => undefined);
      return condition(node, 'Ready')?.status === 'True' ? true : undefined;
    });
    await waitFor('lease created', async () =>
      host.coordination
        .readNamespacedLease({ name: nodeName, namespace: 'kube-node-lease' })
        .catch(() => undefined),
    );
    const renewals: number[] = [];
    const readyMisses: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const lease = await host.coordination.readNamespacedLease({
          name: nodeName,
          namespace: 'kube-node-lease',
        });
        const renewed = new Date(lease.spec?.renewTime as unknown as string).getTime();
        if (renewals.at(-1) !== renewed) renewals.push(renewed);
        const node = await host.core.readNode({ name: nodeName });
        if (condition(node, 'Ready')?.status !== 'True') readyMisses.push(new Date().toISOString());
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();

    const started = Date.now();
    const batch = 50;
    for (let i = 0; i < 500; i += batch) {
      await Promise.all(
        Array.from({ length: batch }, (_, j) =>
          host.core.createNamespacedPod({
            namespace,
            body: {
              metadata: { name: `flood-${i + j}` },
              spec: {
                nodeName,
                tolerations: [{ key: 'virtual-kubelet.io/provider', operator: 'Exists' }],
                containers: [{ name: 'main', image: 'busybox' }],
              },
            },
          }),
        ),
      );
    }
    await host.core.deleteCollectionNamespacedPod({ namespace, gracePeriodSeconds: 0 });
    // Observe at least three renewal periods after the flood started.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 32_000 - (Date.now() - started))));
    sampling = false;
    await sampler;

    const gaps = renewals.slice(1).map((t, i) => t - (renewals[i] as number));
    expect(renewals.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(12_000);
    expect(readyMisses).toEqual([]);
  });
});
