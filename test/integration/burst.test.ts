// Opt-in spill-over against real clusters: the host's own scheduler fills local nodes first and places
// the surplus on the virtual node, scale-down removes remote replicas first, pinned pods land exactly
// where pinned, DaemonSets stay off virtual nodes, and pods that did not opt in are never touched.
import { AppsV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { parseQuantity } from '../../src/kube/quantity.ts';
import { clusters } from '../cluster/fixture.ts';
import { freePort } from '../cluster/ports.ts';
import { kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import {
  createDeployment,
  delegatesCollected,
  podsWithLabel,
  scaleDeployment,
  waitForRunning,
} from '../support/workloads.ts';

const suffix = uniqueSuffix();
const remoteName = `burst-${suffix}`;
const nodeName = `spillway-burst-${suffix}`;
const namespace = `burst-${suffix}`;
const plainNamespace = `plain-${suffix}`;
const spillwayNamespace = `spillway-burst-${suffix}`;
// A taint of this test's own, so burst pods can only spill onto this virtual node (not onto the
// virtual nodes other test files leave behind to expire).
const virtualTaint = { key: `burst-${suffix}.spillway.dev/virtual`, effect: 'NoSchedule' };
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
const apps = host.kubeConfig.makeApiClient(AppsV1Api);
let spillway: Spillway;

const oneCpu = { containers: [{ name: 'main', image: 'nginx', resources: { requests: { cpu: '1' } } }] };

/** How many 1-CPU pods the host's real nodes can still take (other tests may have left pods there). */
async function localSlots(): Promise<number> {
  const nodes = (await host.core.listNode()).items.filter((n) => n.metadata?.name?.startsWith('host-node-'));
  const pods = await host.core.listPodForAllNamespaces({
    fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed',
  });
  let slots = 0;
  for (const node of nodes) {
    let used = 0n;
    for (const pod of pods.items.filter((p) => p.spec?.nodeName === node.metadata?.name)) {
      for (const c of pod.spec?.containers ?? []) used += parseQuantity(c.resources?.requests?.cpu ?? '0');
    }
    const free = parseQuantity(node.status?.allocatable?.cpu ?? '0') - used;
    slots += Number(free / parseQuantity('1'));
  }
  return slots;
}

const live = (pods: V1Pod[]) => pods.filter((p) => !p.metadata?.deletionTimestamp);
const onVirtualNode = (pods: V1Pod[]) => pods.filter((p) => p.spec?.nodeName === nodeName);

beforeAll(async () => {
  await host.core.createNamespace({
    body: { metadata: { name: namespace, labels: { 'spillway.dev/burst': 'enabled' } } },
  });
  await host.core.createNamespace({ body: { metadata: { name: plainNamespace } } });
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    namespace: spillwayNamespace,
    node: { taints: [virtualTaint] },
    remotes: [{ name: remoteName, kubeconfig: clusters.remote.kubeconfig, nodeName }],
    extra: { webhook: { enabled: true, port: await freePort(), notReadyTolerationSeconds: 20 } },
  });
  await waitFor('virtual node Ready and untainted by the node lifecycle', async () => {
    const node = await host.core.readNode({ name: nodeName }).catch(() => undefined);
    const ready = node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    return ready && node?.spec?.taints?.length === 1 ? true : undefined;
  });
});

afterAll(async () => {
  for (const name of [namespace, plainNamespace]) await host.core.deleteNamespace({ name }).catch(() => {});
  await delegatesCollected(remote, namespace);
  await spillway?.stop();
  await host.core.deleteNode({ name: nodeName }).catch(() => {});
  await clusters
    .kubectl('host', ['delete', 'mutatingwebhookconfiguration', `spillway-burst.${spillwayNamespace}`])
    .catch(() => {});
  await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
});

describe('spill-over', () => {
  it('fills local nodes first, spills the surplus onto the virtual node, and scales down remote replicas first', async () => {
    const local = await localSlots();
    expect(local).toBeGreaterThan(0);
    const replicas = local + 2;
    await createDeployment(host, namespace, 'web', replicas, oneCpu);
    const running = await waitForRunning(host, namespace, 'app=web', replicas, 90_000);
    expect(onVirtualNode(running)).toHaveLength(2);
    expect(running.filter((p) => p.spec?.nodeName?.startsWith('host-node-'))).toHaveLength(local);
    // The manifest asked for none of this: the webhook added it.
    const spilled = onVirtualNode(running)[0] as V1Pod;
    expect(spilled.spec?.tolerations).toContainEqual({ ...virtualTaint, operator: 'Exists' });
    // The cost is written right after the status (Running), in the same reconcile: wait for it.
    const cost = await waitFor('the pod-deletion-cost on the spilled pod', async () => {
      const pod = await host.core.readNamespacedPod({ name: spilled.metadata?.name ?? '', namespace });
      return pod.metadata?.annotations?.['controller.kubernetes.io/pod-deletion-cost'];
    });
    expect(cost).toBe('-100');
    const delegates = await remote.core.listNamespacedPod({ namespace });
    expect(delegates.items.map((p) => p.metadata?.name).sort()).toEqual(
      onVirtualNode(running)
        .map((p) => p.metadata?.name)
        .sort(),
    );

    await scaleDeployment(host, namespace, 'web', local - 2);
    const remaining = await waitFor('scaled down', async () => {
      const pods = live(await podsWithLabel(host, namespace, 'app=web'));
      return pods.length === local - 2 ? pods : undefined;
    });
    expect(onVirtualNode(remaining)).toEqual([]);
    await waitFor('remote replicas’ delegates gone', async () =>
      (await remote.core.listNamespacedPod({ namespace })).items.length === 0 ? true : undefined,
    );
    await apps.deleteNamespacedDeployment({ namespace, name: 'web' });
  });

  it('lands a pinned burst pod only on its cluster', async () => {
    await host.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'pinned', labels: { app: 'pinned' } },
        spec: { nodeSelector: { 'spillway.dev/cluster': remoteName }, ...oneCpu },
      },
    });
    const [pod] = await waitForRunning(host, namespace, 'app=pinned', 1);
    expect(pod?.spec?.nodeName).toBe(nodeName);
    await host.core.deleteNamespacedPod({ namespace, name: 'pinned', gracePeriodSeconds: 0 });
  });

  it('leaves pods of namespaces that did not opt in untouched', async () => {
    await host.core.createNamespacedPod({
      namespace: plainNamespace,
      body: { metadata: { name: 'plain' }, spec: oneCpu },
    });
    const pod = await host.core.readNamespacedPod({ namespace: plainNamespace, name: 'plain' });
    expect(pod.metadata?.annotations?.['spillway.dev/burst-mutated']).toBeUndefined();
    expect(pod.spec?.affinity).toBeUndefined();
    // Only what the API server's DefaultTolerationSeconds adds to every pod.
    expect(pod.spec?.tolerations?.map((t) => `${t.key}:${t.tolerationSeconds}`).sort()).toEqual([
      'node.kubernetes.io/not-ready:300',
      'node.kubernetes.io/unreachable:300',
    ]);
    // A pod annotated to burst is mutated even there.
    await host.core.createNamespacedPod({
      namespace: plainNamespace,
      body: {
        metadata: { name: 'annotated', annotations: { 'spillway.dev/burst': 'enabled' } },
        spec: oneCpu,
      },
    });
    const annotated = await host.core.readNamespacedPod({ namespace: plainNamespace, name: 'annotated' });
    expect(annotated.metadata?.annotations?.['spillway.dev/burst-mutated']).toBeDefined();
  });

  it('keeps DaemonSet pods off the virtual node, with a reason', async () => {
    await apps.createNamespacedDaemonSet({
      namespace,
      body: {
        metadata: { name: 'agent' },
        spec: {
          selector: { matchLabels: { app: 'agent' } },
          template: {
            metadata: { labels: { app: 'agent' } },
            // Tolerates everything, as node agents do.
            spec: { tolerations: [{ operator: 'Exists' }], containers: [{ name: 'agent', image: 'agent' }] },
          },
        },
      },
    });
    const event = await waitFor('DaemonSetPodRefused event', async () => {
      const events = await host.core.listNamespacedEvent({
        namespace,
        fieldSelector: 'reason=DaemonSetPodRefused',
      });
      return events.items[0];
    });
    expect(event.message).toContain(nodeName);
    expect((await remote.core.listNamespacedPod({ namespace, labelSelector: 'app=agent' })).items).toEqual(
      [],
    );
    await apps.deleteNamespacedDaemonSet({ namespace, name: 'agent' });
  });

  it('never blocks pod creation when the webhook is down', async () => {
    spillway.webhook?.stop();
    await host.core.createNamespacedPod({
      namespace,
      body: { metadata: { name: 'while-down' }, spec: oneCpu },
    });
    const pod = await host.core.readNamespacedPod({ namespace, name: 'while-down' });
    expect(pod.metadata?.annotations?.['spillway.dev/burst-mutated']).toBeUndefined();
  });
});
