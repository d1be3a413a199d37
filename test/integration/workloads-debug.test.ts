// kubectl debug and in-place resize on real clusters (KWOK nodes), where only the API matters: the
// ephemeral container reaches the delegate's spec through its subresource. KWOK's kubelet does not
// report container resources, which is how an API server knows a node cannot resize: the host refuses a
// resize then, as the remote would. Once the delegate's status says what it runs with (as a kubelet that
// resizes does), a resize the remote accepts lands in the delegate's spec, and one the remote refuses
// (it fits the virtual node, which sums the remote's nodes, but none of them) is said on the host pod
// with the remote's reason, without touching the delegate. What a kubelet does with them is proven on
// real containers (test/realnode/real-debug-resize.test.ts).
import type { CoreV1Event } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import { kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import { pinnedSpec, tearDownVirtualNode, waitForNodeReady } from '../support/workloads.ts';

const suffix = uniqueSuffix();
const remoteName = `debug-${suffix}`;
const nodeName = `spillway-debug-${suffix}`;
const namespace = `debug-${suffix}`;
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
let spillway: Spillway;

const kubectl = (args: string[]) => clusters.kubectl('host', ['-n', namespace, ...args]);
const delegate = () => remote.core.readNamespacedPod({ name: 'target', namespace });
const resize = (cpu: string, limit: string) =>
  kubectl([
    'patch',
    'pod',
    'target',
    '--subresource',
    'resize',
    '-p',
    JSON.stringify({
      spec: { containers: [{ name: 'main', resources: { requests: { cpu }, limits: { cpu: limit } } }] },
    }),
  ]);
const rejections = async (): Promise<CoreV1Event[]> =>
  (
    await host.core.listNamespacedEvent({
      namespace,
      fieldSelector: 'involvedObject.kind=Pod,involvedObject.name=target',
    })
  ).items.filter((e) => e.reason === 'ResizeRejected');

beforeAll(async () => {
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    remotes: [{ name: remoteName, kubeconfig: clusters.remote.kubeconfig, nodeName }],
  });
  await waitForNodeReady(host, nodeName);
  await host.core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name: 'target', labels: { app: 'target' } },
      spec: pinnedSpec(
        remoteName,
        {},
        {
          resources: { requests: { cpu: '100m', memory: '32Mi' }, limits: { cpu: '200m', memory: '32Mi' } },
        },
      ),
    },
  });
  await waitFor('the delegate running', async () =>
    (await delegate().catch(() => undefined))?.status?.phase === 'Running' ? true : undefined,
  );
});

afterAll(async () => {
  await tearDownVirtualNode({ host, remote, spillway, nodeName, namespaces: [namespace] });
});

describe('kubectl debug and resize through the API', () => {
  it('adds the ephemeral container kubectl debug makes to the delegate', async () => {
    await kubectl([
      'debug',
      'target',
      '--image=busybox',
      '-c',
      'debugger',
      '--attach=false',
      '--',
      'sleep',
      '60',
    ]);
    const added = await waitFor('the ephemeral container on the delegate', async () => {
      const containers = (await delegate()).spec?.ephemeralContainers ?? [];
      return containers.length > 0 ? containers : undefined;
    });
    expect(added.map((c) => [c.name, c.image, c.command])).toEqual([
      ['debugger', 'busybox', ['sleep', '60']],
    ]);
  });

  it('refuses a resize on the host while the remote’s kubelet reports no container resources', async () => {
    const refused = await resize('150m', '300m').catch((error: Error) => error);
    expect(String(refused)).toContain('Pod running on node without support for resize');
  });

  it('applies a resize the remote accepts to the delegate', async () => {
    // What a kubelet that resizes in place reports, on the delegate: the host pod's mirrored status follows.
    const running = await delegate();
    const statuses = (running.status?.containerStatuses ?? []).map((c) =>
      c.name === 'main' ? { ...c, resources: running.spec?.containers[0]?.resources } : c,
    );
    await remote.core.replaceNamespacedPodStatus({
      name: 'target',
      namespace,
      body: { ...running, status: { ...running.status, containerStatuses: statuses } },
    });
    await waitFor('the host pod’s container resources', async () => {
      const pod = await host.core.readNamespacedPod({ name: 'target', namespace });
      return pod.status?.containerStatuses?.find((c) => c.name === 'main')?.resources ? true : undefined;
    });
    await resize('150m', '300m');
    const resources = await waitFor('the delegate resized', async () => {
      const main = (await delegate()).spec?.containers.find((c) => c.name === 'main');
      return main?.resources?.limits?.cpu === '300m' ? main.resources : undefined;
    });
    expect(resources).toEqual({
      requests: { cpu: '150m', memory: '32Mi' },
      limits: { cpu: '300m', memory: '32Mi' },
    });
  });

  it('says on the host pod that the remote refused a resize no remote node can hold', async () => {
    // The virtual node sums the remote's three 4-CPU nodes; the host allows 6 CPUs, the remote's API server does not.
    await resize('6', '7');
    const [event] = await waitFor('a ResizeRejected event', async () => {
      const events = await rejections();
      return events.length > 0 ? events : undefined;
    });
    expect(event?.type).toBe('Warning');
    expect(event?.message).toContain('node didn');
    expect(event?.message).toContain(`delegate ${namespace}/target`);
    const main = (await delegate()).spec?.containers.find((c) => c.name === 'main');
    expect(main?.resources?.requests?.cpu).toBe('150m');
  });
});
