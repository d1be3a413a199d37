// What Spillway cannot do gets an event and a reason on the host pod; nothing is dropped silently.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import { kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import { pinnedSpec, waitForNodeReady, waitForRunning } from '../support/workloads.ts';

const suffix = uniqueSuffix();
const remoteName = `refuse-${suffix}`;
const nodeName = `spillway-refuse-${suffix}`;
const namespace = `refuse-${suffix}`;
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
let spillway: Spillway;

async function delegatedCondition(name: string, reason: string) {
  return waitFor(`${name}: ${reason}`, async () => {
    const pod = await host.core.readNamespacedPod({ name, namespace });
    const condition = pod.status?.conditions?.find((c) => c.type === 'spillway.dev/Delegated');
    return condition?.reason === reason ? { pod, condition } : undefined;
  });
}

async function warning(name: string, reason: string) {
  return waitFor(`${reason} event on ${name}`, async () => {
    const events = await host.core.listNamespacedEvent({
      namespace,
      fieldSelector: `involvedObject.name=${name}`,
    });
    return events.items.find((e) => e.reason === reason && e.type === 'Warning');
  });
}

beforeAll(async () => {
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    remotes: [{ name: remoteName, kubeconfig: clusters.remote.kubeconfig, nodeName }],
    extra: { pods: { unschedulable: { policy: 'fail', timeoutSeconds: 3 } } },
  });
  await waitForNodeReady(host, nodeName);
});

afterAll(async () => {
  await host.core.deleteNamespace({ name: namespace }).catch(() => {});
  await spillway?.stop();
  await host.core.deleteNode({ name: nodeName }).catch(() => {});
  await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
});

describe('refusals', () => {
  it('refuses a pod that needs host storage', async () => {
    await host.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'with-claim' },
        // Created already bound: the host scheduler would not place a pod whose claim is unbound.
        spec: pinnedSpec(remoteName, {
          nodeName,
          volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }],
        }),
      },
    });
    const { pod, condition } = await delegatedCondition('with-claim', 'UnsupportedVolume');
    expect(pod.status?.phase).toBe('Pending');
    expect(condition.message).toContain('volume "data"');
    await warning('with-claim', 'UnsupportedVolume');
  });

  it('surfaces what the remote’s admission forbids, and runs the pod once it is allowed', async () => {
    await remote.core.createNamespace({ body: { metadata: { name: namespace } } }).catch(() => {});
    await remote.core.createNamespacedResourceQuota({
      namespace,
      body: { metadata: { name: 'no-pods' }, spec: { hard: { pods: '0' } } },
    });
    await host.core.createNamespacedPod({
      namespace,
      body: { metadata: { name: 'quota', labels: { app: 'quota' } }, spec: pinnedSpec(remoteName) },
    });
    const { condition } = await delegatedCondition('quota', 'DelegateForbidden');
    expect(condition.message).toContain('exceeded quota');
    await warning('quota', 'DelegateForbidden');
    await remote.core.deleteNamespacedResourceQuota({ name: 'no-pods', namespace });
    await waitForRunning(host, namespace, 'app=quota', 1, 90_000);
  });

  it('explains a delegate the remote cannot schedule, and fails it after the configured time', async () => {
    // Another tenant holds host port 31999 on every remote node: the host scheduler and Spillway's own
    // fit check (resources) see room, only the remote scheduler knows the port is taken.
    await remote.core.createNamespace({ body: { metadata: { name: namespace } } }).catch(() => {});
    for (const node of (await remote.core.listNode()).items) {
      await remote.core.createNamespacedPod({
        namespace,
        body: {
          metadata: { name: `port-holder-${node.metadata?.name}` },
          spec: {
            nodeName: node.metadata?.name,
            containers: [{ name: 'main', image: 'holder', ports: [{ containerPort: 80, hostPort: 31999 }] }],
          },
        },
      });
    }
    await host.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'port-clash' },
        spec: pinnedSpec(remoteName, {}, { ports: [{ containerPort: 80, hostPort: 31999 }] }),
      },
    });
    const { condition } = await delegatedCondition('port-clash', 'RemoteUnschedulable');
    expect(condition.message).toContain('free ports');
    const failed = await waitFor('host pod Failed', async () => {
      const pod = await host.core.readNamespacedPod({ name: 'port-clash', namespace });
      return pod.status?.phase === 'Failed' ? pod : undefined;
    });
    expect(failed.status?.reason).toBe('RemoteUnschedulable');
    await warning('port-clash', 'RemoteUnschedulable');
    await waitFor('delegate removed', async () =>
      (await remote.core.readNamespacedPod({ name: 'port-clash', namespace }).catch(() => undefined))
        ? undefined
        : true,
    );
  });
});
