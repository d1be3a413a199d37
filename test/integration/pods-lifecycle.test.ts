// Pod mirroring on real clusters: what users do with pods bound to a virtual node, and what they see.
import { PatchStrategy, setHeaderOptions, type V1Pod, Watch } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import { kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import {
  createDeployment,
  createJob,
  pinnedSpec,
  podsWithLabel,
  readJob,
  waitForNodeReady,
  waitForRunning,
} from '../support/workloads.ts';

const suffix = uniqueSuffix();
const remoteName = `pods-${suffix}`;
const nodeName = `spillway-pods-${suffix}`;
const namespace = `pods-${suffix}`;
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
const scope = `host.${nodeName}`;
let spillway: Spillway;

const delegateOf = (name: string) =>
  remote.core.readNamespacedPod({ name, namespace }).catch(() => undefined);

beforeAll(async () => {
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    remotes: [{ name: remoteName, kubeconfig: clusters.remote.kubeconfig, nodeName }],
  });
  await waitForNodeReady(host, nodeName);
});

afterAll(async () => {
  await host.core.deleteNamespace({ name: namespace }).catch(() => {});
  // Let Spillway clean up the delegates of the deleted namespace before stopping it.
  await waitFor('delegates collected', async () => {
    const left = await remote.core.listNamespacedPod({
      namespace,
      labelSelector: `spillway.dev/virtual-node=${nodeName}`,
    });
    return left.items.length === 0 ? true : undefined;
  }).catch(() => {});
  await spillway?.stop();
  await host.core.deleteNode({ name: nodeName }).catch(() => {});
  await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
});

describe('pod mirroring', () => {
  it('runs a Deployment in the remote and shows it Running and Ready in the host, with the right IPs', async () => {
    await host.core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: 'web-config' }, data: { greeting: 'hello' } },
    });
    await createDeployment(
      host,
      namespace,
      'web',
      3,
      pinnedSpec(
        remoteName,
        {},
        {
          resources: { requests: { cpu: '100m', memory: '64Mi' } },
          env: [
            { name: 'GREETING', valueFrom: { configMapKeyRef: { name: 'web-config', key: 'greeting' } } },
          ],
        },
      ),
    );
    const pods = await waitForRunning(host, namespace, 'app=web', 3);
    for (const pod of pods) {
      expect(pod.spec?.nodeName).toBe(nodeName);
      const delegate = await delegateOf(pod.metadata?.name as string);
      expect(delegate?.status?.phase).toBe('Running');
      expect(delegate?.spec?.nodeName).toMatch(/^remote-node-\d$/);
      expect(pod.status?.podIP).toBe(delegate?.status?.podIP);
      expect(pod.status?.podIP).toMatch(/^10\./);
      expect(pod.status?.hostIP).toBe('127.0.0.1');
      expect(delegate?.metadata?.labels).toMatchObject({
        app: 'web',
        'spillway.dev/host-cluster': 'host',
        'spillway.dev/host-pod-uid': pod.metadata?.uid,
      });
      expect(delegate?.metadata?.labels?.['pod-template-hash']).toBeUndefined();
      expect(delegate?.metadata?.ownerReferences).toBeUndefined();
      expect(delegate?.spec?.containers[0]?.env?.[0]?.valueFrom?.configMapKeyRef?.name).toBe(
        `web-config.${scope}`,
      );
    }
    const copy = await remote.core.readNamespacedConfigMap({ name: `web-config.${scope}`, namespace });
    expect(copy.data).toEqual({ greeting: 'hello' });
  });

  it('shows remote events about the delegate on the host pod', async () => {
    const [pod] = await podsWithLabel(host, namespace, 'app=web');
    const event = await waitFor('mirrored Scheduled event', async () => {
      const events = await host.core.listNamespacedEvent({
        namespace,
        fieldSelector: `involvedObject.name=${pod?.metadata?.name},reason=Scheduled`,
      });
      return events.items.find((e) => e.message?.includes('(remote cluster'));
    });
    expect(event.message).toMatch(/remote-node-\d/);
  });

  it('carries a ConfigMap change from the host to the remote copy', async () => {
    await host.core.patchNamespacedConfigMap(
      { name: 'web-config', namespace, body: { data: { greeting: 'bonjour' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const copy = await waitFor('updated copy', async () => {
      const current = await remote.core.readNamespacedConfigMap({ name: `web-config.${scope}`, namespace });
      return current.data?.greeting === 'bonjour' ? current : undefined;
    });
    expect(copy.metadata?.annotations?.['spillway.dev/source']).toBe(`${namespace}/web-config`);
  });

  it('deletes the delegate when the host pod is deleted, and nothing stays Terminating', async () => {
    const [pod] = await podsWithLabel(host, namespace, 'app=web');
    const name = pod?.metadata?.name as string;
    const delegateUid = (await delegateOf(name))?.metadata?.uid;
    expect(delegateUid).toBeDefined();
    await host.core.deleteNamespacedPod({ name, namespace });
    await waitFor(
      'host pod gone',
      async () =>
        (await host.core.readNamespacedPod({ name, namespace }).catch(() => undefined)) ? undefined : true,
      {
        timeoutMs: 15_000,
      },
    );
    const delegate = await delegateOf(name);
    expect(delegate?.metadata?.uid === delegateUid).toBe(false);
    await waitForRunning(host, namespace, 'app=web', 3);
  });

  it('deletes the delegate with the host pod’s grace period, and finalises the host pod only once the delegate is gone', async () => {
    await host.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'graceful', labels: { app: 'graceful' } },
        spec: pinnedSpec(remoteName, { terminationGracePeriodSeconds: 30 }),
      },
    });
    await waitForRunning(host, namespace, 'app=graceful', 1);
    // A finalizer holds the delegate, as a remote kubelet that does not confirm the kill would.
    await remote.core.patchNamespacedPod(
      { name: 'graceful', namespace, body: { metadata: { finalizers: ['spillway.dev/test-hold'] } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    // The remote's kubelet (kwok) shortens the grace to 0 right after; the first deletion event shows ours.
    const firstDeletion = new Promise<V1Pod>((resolve, reject) => {
      void new Watch(remote.kubeConfig)
        .watch(
          `/api/v1/namespaces/${namespace}/pods`,
          { fieldSelector: 'metadata.name=graceful' },
          (_phase: string, pod: V1Pod) => {
            if (pod.metadata?.deletionTimestamp) resolve(pod);
          },
          (error) => (error ? reject(error) : undefined),
        )
        .then((controller) => firstDeletion.finally(() => controller.abort()));
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const deletedAt = Date.now();
    await host.core.deleteNamespacedPod({ name: 'graceful', namespace, gracePeriodSeconds: 4 });
    const terminating = await firstDeletion;
    expect(terminating.metadata?.deletionGracePeriodSeconds).toBe(4);
    // The grace period runs out and the delegate is still there: its fate is not known, so the host
    // pod waits (a bare pod's delegate is never forced away) and says why.
    const waiting = await waitFor(
      'WaitingForDelegate event',
      async () => {
        const events = await host.core.listNamespacedEvent({
          namespace,
          fieldSelector: 'involvedObject.name=graceful,reason=WaitingForDelegate',
        });
        return events.items[0];
      },
      { timeoutMs: 30_000 },
    );
    expect(Date.now() - deletedAt).toBeGreaterThanOrEqual(4_000);
    expect(waiting.message).toContain('still terminating');
    const stillThere = await host.core.readNamespacedPod({ name: 'graceful', namespace });
    expect(stillThere.metadata?.deletionTimestamp).toBeDefined();

    await remote.core.patchNamespacedPod(
      { name: 'graceful', namespace, body: { metadata: { finalizers: null } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await waitFor(
      'host pod finalised once its delegate is gone',
      async () =>
        (await host.core.readNamespacedPod({ name: 'graceful', namespace }).catch(() => undefined))
          ? undefined
          : true,
      { timeoutMs: 30_000 },
    );
    expect(await delegateOf('graceful')).toBeUndefined();
  });

  it('fails the host pod with a reason once its delegate deleted remotely has stopped, and the ReplicaSet replaces it', async () => {
    const [pod] = await podsWithLabel(host, namespace, 'app=web');
    const name = pod?.metadata?.name as string;
    // Held Terminating, as on a remote node that does not confirm the kill: it may still run.
    await remote.core.patchNamespacedPod(
      { name, namespace, body: { metadata: { finalizers: ['spillway.dev/test-hold'] } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await remote.core.deleteNamespacedPod({ name, namespace });
    const terminating = await waitFor('DelegateTerminating event', async () => {
      const events = await host.core.listNamespacedEvent({
        namespace,
        fieldSelector: `involvedObject.name=${name},reason=DelegateTerminating`,
      });
      return events.items[0];
    });
    expect(terminating.message).toContain('not by Spillway');
    // Not failed while its delegate may run: its replacement would run beside it.
    const held = await host.core.readNamespacedPod({ name, namespace });
    expect(held.status?.phase).toBe('Running');
    expect(held.metadata?.uid).toBe(pod?.metadata?.uid);
    await remote.core.patchNamespacedPod(
      { name, namespace, body: { metadata: { finalizers: null } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const failed = await waitFor('host pod Failed', async () => {
      const current = await host.core.readNamespacedPod({ name, namespace }).catch(() => undefined);
      return current?.status?.phase === 'Failed' ? current : undefined;
    });
    expect(failed.status?.reason).toBe('DelegateDeleted');
    expect(failed.status?.message).toContain('not by Spillway');
    expect(failed.status?.containerStatuses?.[0]?.state?.terminated?.reason).toBe('DelegateDeleted');
    // Not silently re-created: the failed pod has no delegate.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await delegateOf(name))?.metadata?.labels?.['spillway.dev/host-pod-uid']).not.toBe(
      pod?.metadata?.uid,
    );
    const replacements = await waitForRunning(host, namespace, 'app=web', 3);
    expect(replacements.map((p) => p.metadata?.name)).not.toContain(name);
    await host.core.deleteNamespacedPod({ name, namespace });
  });

  it('runs a Job to completion once, and it stays Completed', async () => {
    await createJob(
      host,
      namespace,
      'once',
      pinnedSpec(remoteName, {}, { image: 'busybox', command: ['sh', '-c', 'echo done'] }),
    );
    const job = await waitFor('Job complete', async () => {
      const current = await readJob(host, namespace, 'once');
      return current.status?.succeeded === 1 ? current : undefined;
    });
    expect(job.status?.failed ?? 0).toBe(0);
    const [pod] = await podsWithLabel(host, namespace, 'job-name=once');
    expect(pod?.status?.phase).toBe('Succeeded');
    expect(pod?.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
    // A few reconciles later it is still Succeeded, with the same single delegate.
    const delegateUid = (await delegateOf(pod?.metadata?.name as string))?.metadata?.uid;
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const later = await host.core.readNamespacedPod({ name: pod?.metadata?.name as string, namespace });
    expect(later.status?.phase).toBe('Succeeded');
    expect((await delegateOf(pod?.metadata?.name as string))?.metadata?.uid).toBe(delegateUid);
    const delegates = await remote.core.listNamespacedPod({ namespace, labelSelector: 'job-name=once' });
    expect(delegates.items.length).toBeLessThanOrEqual(1);
  });

  it('reaches the delegate with the spec changes Kubernetes allows', async () => {
    await host.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'solo', labels: { tier: 'a' } },
        spec: pinnedSpec(remoteName, {}, { image: 'nginx:1.27' }),
      },
    });
    await waitForRunning(host, namespace, 'tier=a', 1);
    await host.core.patchNamespacedPod(
      {
        name: 'solo',
        namespace,
        body: {
          metadata: { labels: { tier: 'b' }, annotations: { owner: 'team-b' } },
          spec: { containers: [{ name: 'main', image: 'nginx:1.28' }], activeDeadlineSeconds: 3600 },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    const delegate = await waitFor('delegate updated', async () => {
      const current = await delegateOf('solo');
      return current?.spec?.containers[0]?.image === 'nginx:1.28' ? current : undefined;
    });
    expect(delegate.metadata?.labels?.tier).toBe('b');
    expect(delegate.metadata?.annotations?.owner).toBe('team-b');
    expect(delegate.spec?.activeDeadlineSeconds).toBe(3600);
  });

  it('holds a pod whose Secret is missing with an event and a reason, and runs it once the Secret exists', async () => {
    await host.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'needs-secret', labels: { tier: 'secret' } },
        spec: pinnedSpec(
          remoteName,
          {},
          {
            env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'api-token', key: 'token' } } }],
          },
        ),
      },
    });
    const held = await waitFor('reason on the host pod', async () => {
      const pod = await host.core.readNamespacedPod({ name: 'needs-secret', namespace });
      const condition = pod.status?.conditions?.find((c) => c.type === 'spillway.dev/Delegated');
      return condition?.reason === 'MissingReference' ? pod : undefined;
    });
    expect(held.status?.phase).toBe('Pending');
    expect(held.status?.containerStatuses?.[0]?.state?.waiting).toMatchObject({
      reason: 'CreateContainerConfigError',
      message: 'secret "api-token" not found',
    });
    const events = await host.core.listNamespacedEvent({
      namespace,
      fieldSelector: 'involvedObject.name=needs-secret',
    });
    expect(events.items.some((e) => e.reason === 'MissingReference' && e.type === 'Warning')).toBe(true);
    expect(await delegateOf('needs-secret')).toBeUndefined();

    await host.core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'api-token' }, stringData: { token: 's3cret' } },
    });
    await waitForRunning(host, namespace, 'tier=secret', 1);
    const copy = await remote.core.readNamespacedSecret({ name: `api-token.${scope}`, namespace });
    expect(Buffer.from(copy.data?.token ?? '', 'base64').toString()).toBe('s3cret');
  });

  it('collects orphaned delegates continuously, not only at start', async () => {
    // A delegate of this virtual node whose host pod does not exist (as a crash would leave it).
    await remote.core.createNamespacedPod({
      namespace,
      body: {
        metadata: {
          name: 'orphan',
          labels: {
            'spillway.dev/managed-by': 'spillway',
            'spillway.dev/host-cluster': 'host',
            'spillway.dev/host-pod-uid': 'no-such-uid',
            'spillway.dev/virtual-node': nodeName,
          },
          annotations: { 'spillway.dev/host-namespace': namespace, 'spillway.dev/host-name': 'orphan' },
        },
        spec: { containers: [{ name: 'main', image: 'busybox' }] },
      },
    });
    await waitFor('orphan deleted', async () => ((await delegateOf('orphan')) ? undefined : true), {
      timeoutMs: 15_000,
    });
  });
});
