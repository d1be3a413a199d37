// Proves the test bed itself: real control planes schedule pods, and kwok serves logs and exec for them.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusters } from '../cluster/fixture.ts';
import { waitFor } from '../support/wait.ts';

function api(kubeconfig: string) {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return { core: kc.makeApiClient(CoreV1Api), custom: kc.makeApiClient(CustomObjectsApi) };
}

const namespace = `testbed-${process.pid}`;

describe('the remote test cluster', () => {
  const { core, custom } = api(clusters.remote.kubeconfig);
  const podName = 'hello';

  beforeAll(async () => {
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });
  afterAll(async () => {
    await core.deleteNamespace({ name: namespace });
  });

  it('schedules a pod onto a simulated node, runs it, and serves its logs and exec', async () => {
    const logDir = await mkdtemp(join(tmpdir(), 'spillway-testbed-'));
    const logFile = join(logDir, 'hello.log');
    // kwok reads container logs as a kubelet does: in the CRI log format.
    await writeFile(
      logFile,
      [
        '2026-01-02T03:04:05.000000001Z stdout F first line of the configured log',
        '2026-01-02T03:04:06.000000001Z stderr F second line',
        '',
      ].join('\n'),
    );
    await custom.createNamespacedCustomObject({
      group: 'kwok.x-k8s.io',
      version: 'v1alpha1',
      namespace,
      plural: 'logs',
      body: {
        apiVersion: 'kwok.x-k8s.io/v1alpha1',
        kind: 'Logs',
        metadata: { name: podName, namespace },
        spec: { logs: [{ containers: ['main'], logsFile: logFile }] },
      },
    });
    await custom.createNamespacedCustomObject({
      group: 'kwok.x-k8s.io',
      version: 'v1alpha1',
      namespace,
      plural: 'execs',
      body: {
        apiVersion: 'kwok.x-k8s.io/v1alpha1',
        kind: 'Exec',
        metadata: { name: podName, namespace },
        spec: { execs: [{ containers: ['main'], local: { workDir: logDir } }] },
      },
    });
    await core.createNamespacedPod({
      namespace,
      body: { metadata: { name: podName }, spec: { containers: [{ name: 'main', image: 'busybox' }] } },
    });

    const running = await waitFor('pod Running', async () => {
      const pod = await core.readNamespacedPod({ name: podName, namespace });
      return pod.status?.phase === 'Running' ? pod : undefined;
    });
    expect(running.spec?.nodeName).toMatch(/^remote-node-\d$/);
    expect(running.status?.podIP).toMatch(/^10\.\d+\.\d+\.\d+$/);

    const logs = await clusters.kubectl('remote', ['logs', '-n', namespace, podName]);
    expect(logs.stdout).toBe('first line of the configured log\nsecond line\n');

    const exec = await clusters.kubectl('remote', ['exec', '-n', namespace, podName, '--', 'echo', 'hi']);
    expect(exec.stdout).toBe('hi\n');
  });
});

describe('the host test cluster', () => {
  const { core } = api(clusters.host.kubeconfig);
  const nodeName = `testbed-virtual-${process.pid}`;

  beforeAll(async () => {
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });
  afterAll(async () => {
    await core.deleteNamespace({ name: namespace });
    await core.deleteNode({ name: nodeName });
  });

  it('binds a pod with a matching nodeSelector and toleration to a node the test created', async () => {
    const resources = { cpu: '8', memory: '32Gi', pods: '110' };
    await core.createNode({
      body: {
        metadata: { name: nodeName, labels: { 'spillway.dev/testbed': nodeName } },
        spec: { taints: [{ key: 'spillway.dev/testbed', value: 'only', effect: 'NoSchedule' }] },
        status: {
          capacity: resources,
          allocatable: resources,
          conditions: [
            { type: 'Ready', status: 'True', reason: 'TestbedReady', lastHeartbeatTime: new Date() },
          ],
        },
      },
    });
    const nodes = await core.listNode();
    const managedByKwok = nodes.items.filter(
      (n) => n.metadata?.annotations?.['kwok.x-k8s.io/node'] === 'fake',
    );
    expect(managedByKwok.map((n) => n.metadata?.name).sort()).toEqual(['host-node-0', 'host-node-1']);

    const pod: V1Pod = {
      metadata: { name: 'pinned' },
      spec: {
        nodeSelector: { 'spillway.dev/testbed': nodeName },
        tolerations: [
          { key: 'spillway.dev/testbed', operator: 'Equal', value: 'only', effect: 'NoSchedule' },
        ],
        containers: [{ name: 'main', image: 'busybox' }],
      },
    };
    await core.createNamespacedPod({ namespace, body: pod });
    const bound = await waitFor('pod bound by the scheduler', async () => {
      const current = await core.readNamespacedPod({ name: 'pinned', namespace });
      return current.spec?.nodeName ? current : undefined;
    });
    expect(bound.spec?.nodeName).toBe(nodeName);
    // kwok does not manage this node, so nothing runs the pod: it stays Pending on its node.
    expect(bound.status?.phase).toBe('Pending');
  });
});
