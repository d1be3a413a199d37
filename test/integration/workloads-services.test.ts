// Services across clusters on real clusters (KWOK nodes): the Services of a namespace with pods on the
// virtual node appear in its remote namespace, selector-less, with the remote's own cluster IP (headless
// kept headless) and EndpointSlices of the endpoints the host sees ready; the delegates' own IPs are in
// the host's EndpointSlices through their mirrored status. Opt-outs and opt-ins per Service and per
// namespace, a remote namesake that is not ours (left alone, an event), host edits, remote edits and
// deletions are followed.
import { DiscoveryV1Api, PatchStrategy, setHeaderOptions, type V1Service } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import { kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import {
  createDeployment,
  pinnedSpec,
  podsWithLabel,
  tearDownVirtualNode,
  waitForNodeReady,
  waitForRunning,
} from '../support/workloads.ts';

const suffix = uniqueSuffix();
const remoteName = `svc-${suffix}`;
const nodeName = `spillway-svc-${suffix}`;
const namespace = `svc-${suffix}`;
const quiet = `svc-quiet-${suffix}`;
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
const hostDiscovery = host.kubeConfig.makeApiClient(DiscoveryV1Api);
const remoteDiscovery = remote.kubeConfig.makeApiClient(DiscoveryV1Api);
let spillway: Spillway;

const readRemote = (name: string, ns = namespace) =>
  remote.core.readNamespacedService({ name, namespace: ns }).catch(() => undefined);

async function remoteEndpoints(service: string): Promise<string[]> {
  const slices = await remoteDiscovery.listNamespacedEndpointSlice({
    namespace,
    labelSelector: `kubernetes.io/service-name=${service}`,
  });
  return slices.items.flatMap((s) => (s.endpoints ?? []).flatMap((e) => e.addresses)).sort();
}

async function hostEndpoints(service: string): Promise<string[]> {
  const slices = await hostDiscovery.listNamespacedEndpointSlice({
    namespace,
    labelSelector: `kubernetes.io/service-name=${service}`,
  });
  return slices.items
    .flatMap((s) => (s.endpoints ?? []).filter((e) => e.conditions?.ready).flatMap((e) => e.addresses))
    .sort();
}

function service(
  name: string,
  selector: Record<string, string>,
  extra: Partial<V1Service['spec']> = {},
  annotations = {},
) {
  return host.core.createNamespacedService({
    namespace,
    body: {
      metadata: { name, annotations, labels: { team: 'shop' } },
      spec: { selector, ports: [{ name: 'http', port: 80, targetPort: 8080 }], ...extra },
    },
  });
}

beforeAll(async () => {
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  await host.core.createNamespace({
    body: { metadata: { name: quiet, annotations: { 'spillway.dev/reflect-services': 'false' } } },
  });
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    remotes: [{ name: remoteName, kubeconfig: clusters.remote.kubeconfig, nodeName }],
  });
  await waitForNodeReady(host, nodeName);
  // Pods on the virtual node, and pods on the host's own (simulated) nodes.
  await createDeployment(host, namespace, 'web', 2, pinnedSpec(remoteName));
  await createDeployment(host, namespace, 'db', 2, { containers: [{ name: 'db', image: 'postgres' }] });
  await createDeployment(host, quiet, 'web', 1, pinnedSpec(remoteName));
  await waitForRunning(host, namespace, 'app=web', 2);
  await waitForRunning(host, namespace, 'app=db', 2);
  await service('web', { app: 'web' });
  await service('db', { app: 'db' }, { type: 'NodePort' });
  await service('peers', { app: 'db' }, { clusterIP: 'None' });
  await service('private', { app: 'db' }, {}, { 'spillway.dev/reflect': 'false' });
  await host.core.createNamespacedService({
    namespace: quiet,
    body: { metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } },
  });
});

afterAll(async () => {
  await tearDownVirtualNode({ host, remote, spillway, nodeName, namespaces: [namespace, quiet] });
});

describe('Services across clusters', () => {
  it('reflects a Service selector-less, with the remote’s own cluster IP and the host’s ready endpoints', async () => {
    const copy = await waitFor('the db Service in the remote', () => readRemote('db'));
    const original = await host.core.readNamespacedService({ name: 'db', namespace });
    expect(copy.spec?.selector).toBeUndefined();
    expect(copy.spec?.type).toBe('ClusterIP');
    expect(copy.spec?.ports?.map((p) => [p.name, p.port, p.targetPort, p.nodePort])).toEqual([
      ['http', 80, 8080, undefined],
    ]);
    expect(copy.spec?.clusterIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(copy.metadata?.labels).toMatchObject({
      team: 'shop',
      'spillway.dev/host-cluster': 'host',
      'spillway.dev/virtual-node': nodeName,
    });
    // The remote allocated its own address: the host's was not carried over.
    const managers = copy.metadata?.managedFields?.find((f) => f.manager === 'spillway');
    expect(JSON.stringify(managers?.fieldsV1)).not.toContain('clusterIP');
    expect(original.spec?.selector).toEqual({ app: 'db' });
    const dbPods = (await podsWithLabel(host, namespace, 'app=db'))
      .map((p) => p.status?.podIP as string)
      .sort();
    await waitFor('the db endpoints in the remote', async () =>
      JSON.stringify(await remoteEndpoints('db')) === JSON.stringify(dbPods) ? true : undefined,
    );
    const slices = await remoteDiscovery.listNamespacedEndpointSlice({
      namespace,
      labelSelector: 'kubernetes.io/service-name=db',
    });
    expect(slices.items[0]?.metadata?.labels?.['endpointslice.kubernetes.io/managed-by']).toBe(
      'spillway.dev',
    );
    expect(slices.items[0]?.ports?.[0]?.port).toBe(8080);
  });

  it('keeps a headless Service headless, with the endpoints’ hostnames', async () => {
    const copy = await waitFor('the peers Service in the remote', () => readRemote('peers'));
    expect(copy.spec?.clusterIP).toBe('None');
    const dbPods = (await podsWithLabel(host, namespace, 'app=db'))
      .map((p) => p.status?.podIP as string)
      .sort();
    await waitFor('the peers endpoints', async () =>
      JSON.stringify(await remoteEndpoints('peers')) === JSON.stringify(dbPods) ? true : undefined,
    );
  });

  it('puts the delegates’ IPs in the host’s EndpointSlices, through the mirrored pod status', async () => {
    const delegates = await remote.core.listNamespacedPod({ namespace, labelSelector: 'app=web' });
    const delegateIPs = delegates.items.map((p) => p.status?.podIP as string).sort();
    expect(delegateIPs).toHaveLength(2);
    await waitFor('the web endpoints in the host', async () =>
      JSON.stringify(await hostEndpoints('web')) === JSON.stringify(delegateIPs) ? true : undefined,
    );
    // And, reflected back, the remote's web Service lists its own delegates.
    await waitFor('the web endpoints in the remote', async () =>
      JSON.stringify(await remoteEndpoints('web')) === JSON.stringify(delegateIPs) ? true : undefined,
    );
  });

  it('leaves out a Service that opts out, and every Service of a namespace that opts out', async () => {
    await waitFor('the quiet namespace’s pod delegated', async () =>
      (await remote.core.listNamespacedPod({ namespace: quiet })).items.length === 1 ? true : undefined,
    );
    // Both were looked at long ago: the other Services of the namespace are there.
    await waitFor('web reflected', () => readRemote('web'));
    expect(await readRemote('private')).toBeUndefined();
    expect(await readRemote('web', quiet)).toBeUndefined();
  });

  it('reflects a Service that opts in, in a namespace that opts out (the Service’s choice wins)', async () => {
    await host.core.createNamespacedService({
      namespace: quiet,
      body: {
        metadata: { name: 'wanted', annotations: { 'spillway.dev/reflect': 'true' } },
        spec: { selector: { app: 'web' }, ports: [{ port: 80 }] },
      },
    });
    const copy = await waitFor('wanted reflected', () => readRemote('wanted', quiet));
    expect(copy.spec?.selector).toBeUndefined();
    expect(await readRemote('web', quiet)).toBeUndefined();
  });

  it('leaves a same-named remote Service that is not Spillway’s alone, and says so on the host Service', async () => {
    await remote.core.createNamespacedService({
      namespace,
      body: { metadata: { name: 'legacy' }, spec: { ports: [{ port: 9999 }] } },
    });
    await service('legacy', { app: 'web' });
    const event = await waitFor('a ReflectionConflict event', async () => {
      const events = await host.core.listNamespacedEvent({
        namespace,
        fieldSelector: 'involvedObject.kind=Service,involvedObject.name=legacy',
      });
      return events.items.find((e) => e.reason === 'ReflectionConflict');
    });
    expect(event.type).toBe('Warning');
    expect(event.message).toContain('is not this Spillway');
    const untouched = await readRemote('legacy');
    expect(untouched?.spec?.ports?.map((p) => p.port)).toEqual([9999]);
    expect(untouched?.metadata?.labels?.['spillway.dev/host-cluster']).toBeUndefined();
    expect(await remoteEndpoints('legacy')).toEqual([]);
  });

  it('carries host edits over and restores a copy edited or deleted in the remote', async () => {
    await host.core.patchNamespacedService(
      { name: 'web', namespace, body: { spec: { ports: [{ name: 'http', port: 8000, targetPort: 8080 }] } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await waitFor('the new port', async () =>
      (await readRemote('web'))?.spec?.ports?.[0]?.port === 8000 ? true : undefined,
    );
    await remote.core.deleteNamespacedService({ name: 'web', namespace });
    await waitFor('the copy restored', async () =>
      (await readRemote('web'))?.spec?.ports?.[0]?.port === 8000 ? true : undefined,
    );
  });

  it('deletes the copy with the host Service, and with the namespace’s last pod on the node', async () => {
    await host.core.deleteNamespacedService({ name: 'peers', namespace });
    await waitFor('peers gone', async () => ((await readRemote('peers')) ? undefined : true));
    expect(await remoteEndpoints('peers')).toEqual([]);
    await host.kubeConfig
      .makeApiClient((await import('@kubernetes/client-node')).AppsV1Api)
      .deleteNamespacedDeployment({ name: 'web', namespace });
    await waitFor('every copy gone with the last pod', async () =>
      (await readRemote('web')) || (await readRemote('db')) ? undefined : true,
    );
  });
});
