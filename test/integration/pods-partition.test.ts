// Partition semantics like a kubelet's: a remote whose control plane stops takes its delegates' fate
// with it. A StatefulSet pod evicted from its virtual node stays Terminating (so its controller never
// starts a second `db-0`) until the operator declares the remote dead with the out-of-service taint; a
// ReplicaSet pod, whose kind the release policy names, is released after its grace period. When the
// remote answers again, what was left there is collected.
import { AppsV1Api, PatchStrategy, setHeaderOptions, type V1PodSpec } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import { type Kube, kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import {
  createDeployment,
  podsWithLabel,
  VIRTUAL_NODE_TOLERATION,
  waitForNodeReady,
} from '../support/workloads.ts';

const suffix = uniqueSuffix();
const namespace = `partition-${suffix}`;
const remoteName = `part-${suffix}`;
const nodeName = `spillway-part-${suffix}`;
const realNode = 'host-node-0';
const host = kube(clusters.host.kubeconfig);
let remote: Kube;
let spillway: Spillway;

/** Runs on the virtual node or on one real node, and leaves a not-ready node after 3 s. */
const spec: V1PodSpec = {
  affinity: {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          {
            matchExpressions: [
              { key: 'kubernetes.io/hostname', operator: 'In', values: [nodeName, realNode] },
            ],
          },
        ],
      },
    },
  },
  tolerations: [
    VIRTUAL_NODE_TOLERATION,
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 3 },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 3 },
  ],
  terminationGracePeriodSeconds: 2,
  containers: [{ name: 'main', image: 'db' }],
};

async function setUnschedulable(name: string, unschedulable: boolean) {
  await host.core.patchNode(
    { name, body: { spec: { unschedulable } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

beforeAll(async () => {
  remote = kube((await clusters.ensure('remote-b', 'remote')).kubeconfig);
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    node: { remoteUnreachableGraceSeconds: 3, probeIntervalSeconds: 1 },
    remotes: [{ name: remoteName, kubeconfig: clusters.get('remote-b').kubeconfig, nodeName }],
    extra: { pods: { partition: { releaseKinds: ['ReplicaSet'] } } },
  });
});

afterAll(async () => {
  await setUnschedulable(realNode, false).catch(() => {});
  await clusters.start('remote-b').catch(() => {});
  await host.core.deleteNamespace({ name: namespace }).catch(() => {});
  await waitFor('delegates collected', async () =>
    (await remote.core.listNamespacedPod({ namespace })).items.length === 0 ? true : undefined,
  ).catch(() => {});
  await spillway?.stop();
  await host.core.deleteNode({ name: nodeName }).catch(() => {});
  await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
});

describe('a partitioned remote', () => {
  it('keeps a StatefulSet pod Terminating, releases it only when out of service, and collects on return', async () => {
    await waitForNodeReady(host, nodeName);
    // Both start on the virtual node: the real node is cordoned until they run.
    await setUnschedulable(realNode, true);
    await host.kubeConfig.makeApiClient(AppsV1Api).createNamespacedStatefulSet({
      namespace,
      body: {
        metadata: { name: 'db' },
        spec: {
          replicas: 1,
          serviceName: 'db',
          selector: { matchLabels: { app: 'db' } },
          template: { metadata: { labels: { app: 'db' } }, spec },
        },
      },
    });
    await createDeployment(host, namespace, 'web', 1, spec);
    const running = await waitFor('db-0 and web Running on the virtual node', async () => {
      const pods = [
        ...(await podsWithLabel(host, namespace, 'app=db')),
        ...(await podsWithLabel(host, namespace, 'app=web')),
      ];
      const ok = pods.filter((p) => p.status?.phase === 'Running' && p.spec?.nodeName === nodeName);
      return ok.length === 2 ? pods : undefined;
    });
    await setUnschedulable(realNode, false);
    const db = running.find((p) => p.metadata?.name === 'db-0');
    const web = running.find((p) => p.metadata?.labels?.app === 'web');

    await clusters.stop('remote-b');
    // The ReplicaSet's pod is released after its grace (the policy names ReplicaSet) and replaced.
    await waitFor(
      'web released and replaced on the real node',
      async () => {
        const pods = await podsWithLabel(host, namespace, 'app=web');
        const gone = !pods.some((p) => p.metadata?.uid === web?.metadata?.uid);
        const replaced = pods.some((p) => p.status?.phase === 'Running' && p.spec?.nodeName === realNode);
        return gone && replaced ? true : undefined;
      },
      { timeoutMs: 90_000 },
    );
    // db-0 is evicted too, but stays Terminating: no second db-0 exists anywhere meanwhile.
    const evicted = await waitFor('db-0 evicted', async () => {
      const pod = await host.core.readNamespacedPod({ name: 'db-0', namespace });
      return pod.metadata?.deletionTimestamp ? pod : undefined;
    });
    expect(evicted.metadata?.uid).toBe(db?.metadata?.uid);
    const heldUntil = Date.now() + 20_000;
    while (Date.now() < heldUntil) {
      const pods = await podsWithLabel(host, namespace, 'app=db');
      expect(pods.map((p) => p.metadata?.uid)).toEqual([db?.metadata?.uid]);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const events = await host.core.listNamespacedEvent({
      namespace,
      fieldSelector: 'involvedObject.name=db-0,reason=DelegateUnreachable',
    });
    expect(events.items[0]?.message).toContain('stays Terminating');

    // The operator declares the remote dead: db-0 is released and its replacement runs elsewhere.
    const node = await host.core.readNode({ name: nodeName });
    await host.core.patchNode(
      {
        name: nodeName,
        body: {
          metadata: { resourceVersion: node.metadata?.resourceVersion },
          spec: {
            taints: [
              ...(node.spec?.taints ?? []),
              { key: 'node.kubernetes.io/out-of-service', value: 'nodeshutdown', effect: 'NoExecute' },
            ],
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const replacement = await waitFor(
      'a new db-0 Running on the real node',
      async () => {
        const pod = await host.core.readNamespacedPod({ name: 'db-0', namespace }).catch(() => undefined);
        return pod && pod.metadata?.uid !== db?.metadata?.uid && pod.status?.phase === 'Running'
          ? pod
          : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(replacement.spec?.nodeName).toBe(realNode);

    // The remote answers again: the delegates it still holds (db-0's and web's) are collected.
    await clusters.start('remote-b');
    await waitFor(
      'delegates left in the remote collected',
      async () => {
        const pods = await remote.core.listNamespacedPod({ namespace }).catch(() => undefined);
        return pods && pods.items.length === 0 ? true : undefined;
      },
      { timeoutMs: 60_000 },
    );
    const now = await host.core.readNamespacedPod({ name: 'db-0', namespace });
    expect(now.metadata?.uid).toBe(replacement.metadata?.uid);
    expect(now.status?.phase).toBe('Running');
  });
});
