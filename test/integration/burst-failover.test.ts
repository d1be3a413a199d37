// Failover and return: burst pods in a remote cluster whose control plane stops are evicted after their
// short not-ready toleration and replaced in another remote. The evicted pods stay Terminating while
// their delegates' fate is unknown (as on a partitioned kubelet); when the failed remote returns, the
// delegates left behind there are deleted and only then are the evicted host pods finalised.
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import { freePort } from '../cluster/ports.ts';
import { kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import { createDeployment, podsWithLabel, waitForRunning } from '../support/workloads.ts';

const suffix = uniqueSuffix();
const namespace = `failover-${suffix}`;
const spillwayNamespace = `spillway-failover-${suffix}`;
const healthy = { name: `steady-${suffix}`, node: `spillway-steady-${suffix}` };
const failing = { name: `fragile-${suffix}`, node: `spillway-fragile-${suffix}` };
const virtualTaint = { key: `failover-${suffix}.spillway.dev/virtual`, effect: 'NoSchedule' };
const tolerationSeconds = 10;
const graceSeconds = 5;
const host = kube(clusters.host.kubeconfig);
let spillway: Spillway;
let fragileKubeconfig: string;

beforeAll(async () => {
  fragileKubeconfig = (await clusters.ensure('remote-b', 'remote')).kubeconfig;
  await host.core.createNamespace({
    body: { metadata: { name: namespace, labels: { 'spillway.dev/burst': 'enabled' } } },
  });
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    namespace: spillwayNamespace,
    node: { taints: [virtualTaint], remoteUnreachableGraceSeconds: graceSeconds, probeIntervalSeconds: 1 },
    remotes: [
      { name: healthy.name, kubeconfig: clusters.remote.kubeconfig, nodeName: healthy.node },
      // Burst pods prefer this remote: it is where they go first, and what fails.
      { name: failing.name, kubeconfig: fragileKubeconfig, nodeName: failing.node, burstWeight: 100 },
    ],
    extra: {
      webhook: { enabled: true, port: await freePort(), notReadyTolerationSeconds: tolerationSeconds },
    },
  });
});

afterAll(async () => {
  await host.core.deleteNamespace({ name: namespace }).catch(() => {});
  await clusters.start('remote-b').catch(() => {});
  await spillway?.stop();
  for (const name of [healthy.node, failing.node]) await host.core.deleteNode({ name }).catch(() => {});
  await clusters
    .kubectl('host', ['delete', 'mutatingwebhookconfiguration', `spillway-burst.${spillwayNamespace}`])
    .catch(() => {});
});

const where = (pods: V1Pod[]) => pods.map((p) => p.spec?.nodeName).sort();

describe('a remote cluster outage', () => {
  it('replaces its burst pods in another remote, keeps the evicted ones Terminating, and collects them on return', async () => {
    for (const node of [healthy.node, failing.node]) {
      await waitFor(`${node} Ready without lifecycle taints`, async () => {
        const current = await host.core.readNode({ name: node }).catch(() => undefined);
        const ready = current?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
        return ready && current?.spec?.taints?.length === 1 ? true : undefined;
      });
    }
    // Pinned away from the host's real nodes so only the remotes compete, by preference.
    await createDeployment(host, namespace, 'api', 2, {
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'type', operator: 'In', values: ['virtual-kubelet'] }] },
            ],
          },
        },
      },
      containers: [{ name: 'main', image: 'api' }],
      terminationGracePeriodSeconds: 5,
    });
    const before = await waitForRunning(host, namespace, 'app=api', 2);
    expect(where(before)).toEqual([failing.node, failing.node]);
    const fragile = kube(fragileKubeconfig);
    expect((await fragile.core.listNamespacedPod({ namespace })).items).toHaveLength(2);

    const stoppedAt = Date.now();
    await clusters.stop('remote-b');
    const replaced = await waitFor(
      'replacements Running in the healthy remote',
      async () => {
        const pods = await podsWithLabel(host, namespace, 'app=api');
        const running = pods.filter(
          (p) =>
            p.status?.phase === 'Running' &&
            !p.metadata?.deletionTimestamp &&
            p.spec?.nodeName === healthy.node,
        );
        return running.length === 2 ? running : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    const outageToRunningSeconds = (Date.now() - stoppedAt) / 1000;
    // grace + the node lifecycle's taint + the toleration + scheduling and start, with slack
    expect(outageToRunningSeconds).toBeLessThan(graceSeconds + tolerationSeconds + 40);
    expect(replaced.map((p) => p.metadata?.name)).not.toEqual(before.map((p) => p.metadata?.name));
    // The evicted pods stay Terminating: their delegates may still run in the unreachable remote.
    const evicted = await podsWithLabel(host, namespace, 'app=api');
    const stillTerminating = evicted.filter((p) => before.some((b) => b.metadata?.uid === p.metadata?.uid));
    expect(stillTerminating).toHaveLength(2);
    expect(stillTerminating.every((p) => p.metadata?.deletionTimestamp)).toBe(true);
    const unreachable = await waitFor('DelegateUnreachable event', async () => {
      const events = await host.core.listNamespacedEvent({
        namespace,
        fieldSelector: `involvedObject.name=${before[0]?.metadata?.name},reason=DelegateUnreachable`,
      });
      return events.items[0];
    });
    expect(unreachable.message).toContain('node.kubernetes.io/out-of-service');

    await clusters.start('remote-b');
    await waitFor(
      'delegates left in the returned remote collected',
      async () => {
        const pods = await fragile.core.listNamespacedPod({ namespace }).catch(() => undefined);
        return pods && pods.items.filter((p) => !p.metadata?.deletionTimestamp).length === 0
          ? true
          : undefined;
      },
      { timeoutMs: 60_000 },
    );
    await waitFor(
      'evicted host pods finalised once their delegates are gone',
      async () => {
        const uids = new Set((await podsWithLabel(host, namespace, 'app=api')).map((p) => p.metadata?.uid));
        return before.every((p) => !uids.has(p.metadata?.uid)) ? true : undefined;
      },
      { timeoutMs: 60_000 },
    );
  });
});
