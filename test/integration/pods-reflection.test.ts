// Reflection that follows both sides: copies of the ConfigMaps and Secrets mirrored pods use are written
// with server-side apply (field manager `spillway`), restored within seconds when edited or deleted in
// the remote, follow host edits (removed keys included), stay through a quick scale-down and go once
// unused. Host objects come from one set of shared watches (no GET per reconcile), a no-op reconcile
// makes no API call, and a remote namespace deleted under Spillway is made again.
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Spillway } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { clusters } from '../cluster/fixture.ts';
import { kube, uniqueSuffix } from '../support/kube.ts';
import { writeConfig } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import {
  createDeployment,
  pinnedSpec,
  scaleDeployment,
  waitForNodeReady,
  waitForRunning,
} from '../support/workloads.ts';

const suffix = uniqueSuffix();
const namespace = `reflect-${suffix}`;
const remotes = [`ra-${suffix}`, `rb-${suffix}`];
const nodes = remotes.map((name) => `spillway-${name}`);
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
const copyName = (name: string) => `${name}.host.${nodes[0]}`;
let spillway: Spillway;
/** Every GET Spillway's host client makes, by path. */
const hostGets: string[] = [];

const readCopy = () =>
  remote.core.readNamespacedConfigMap({ name: copyName('settings'), namespace }).catch(() => undefined);

beforeAll(async () => {
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  await host.core.createNamespacedConfigMap({
    namespace,
    body: { metadata: { name: 'settings' }, data: { mode: 'blue', extra: 'yes' } },
  });
  await host.core.createNamespacedSecret({
    namespace,
    body: { metadata: { name: 'token' }, stringData: { t: 's3cret' } },
  });
  const file = await writeConfig({
    hostKubeconfig: clusters.host.kubeconfig,
    remotes: remotes.map((name, i) => ({ name, kubeconfig: clusters.remote.kubeconfig, nodeName: nodes[i] })),
  });
  const config = loadConfig(file, {}, {});
  spillway = new Spillway(config, pino({ level: config.logLevel }));
  const get = spillway.host.get.bind(spillway.host);
  spillway.host.get = ((path: string, options?: object) => {
    hostGets.push(path);
    return get(path, options);
  }) as typeof spillway.host.get;
  await spillway.start();
  for (const name of nodes) {
    await waitForNodeReady(host, name);
  }
  // Both remotes run pods using both objects.
  for (const [i, name] of remotes.entries()) {
    await createDeployment(
      host,
      namespace,
      `app-${i}`,
      2,
      pinnedSpec(
        name,
        {},
        { envFrom: [{ configMapRef: { name: 'settings' } }, { secretRef: { name: 'token' } }] },
      ),
    );
  }
  await waitForRunning(host, namespace, 'app=app-0', 2);
  await waitForRunning(host, namespace, 'app=app-1', 2);
});

afterAll(async () => {
  await host.core.deleteNamespace({ name: namespace }).catch(() => {});
  await waitFor('delegates collected', async () =>
    (await remote.core.listNamespacedPod({ namespace })).items.length === 0 ? true : undefined,
  ).catch(() => {});
  await spillway?.stop();
  for (const name of nodes) await host.core.deleteNode({ name }).catch(() => {});
  await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
});

describe('reflection', () => {
  it('writes copies with server-side apply, field manager spillway', async () => {
    const copy = await readCopy();
    expect(copy?.data).toEqual({ mode: 'blue', extra: 'yes' });
    const managers = copy?.metadata?.managedFields?.map((f) => `${f.manager}/${f.operation}`);
    expect(managers).toContain('spillway/Apply');
    expect(managers?.filter((m) => m.startsWith('spillway/') && m !== 'spillway/Apply')).toEqual([]);
  });

  it('watches the host objects once for every remote, and reads none of them per reconcile', async () => {
    const lists = hostGets.filter((p) => p === '/api/v1/configmaps' || p === '/api/v1/secrets');
    expect(lists.sort()).toEqual(['/api/v1/configmaps', '/api/v1/secrets']);
    const named = () =>
      hostGets.filter(
        (p) =>
          p.startsWith(`/api/v1/namespaces/${namespace}/configmaps/`) ||
          p.startsWith(`/api/v1/namespaces/${namespace}/secrets/`),
      ).length;
    const before = named();
    // At most one read per object, ever (a stub cached before any pod used it gets its content once).
    expect(before).toBeLessThanOrEqual(2);
    const pods = spillway.registry.get(remotes[0] as string)?.pods;
    const calls = pods?.executor.calls;
    const forges = pods?.forges;
    pods?.requeueAll();
    await waitFor('queue idle', async () =>
      pods && pods.queue.length + pods.queue.inFlight === 0 ? true : undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    // A no-op reconcile: no API call, nothing forged, no host object read.
    expect(pods?.executor.calls).toBe(calls);
    expect(pods?.forges).toBe(forges);
    expect(named()).toBe(before);
  });

  it('restores a copy edited in the remote within seconds', async () => {
    await remote.core.patchNamespacedConfigMap(
      { name: copyName('settings'), namespace, body: { data: { mode: 'hacked' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const restored = await waitFor(
      'copy restored',
      async () => {
        const copy = await readCopy();
        return copy?.data?.mode === 'blue' ? copy : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    expect(restored.data).toEqual({ mode: 'blue', extra: 'yes' });
  });

  it('restores a copy deleted in the remote within seconds', async () => {
    const before = await readCopy();
    await remote.core.deleteNamespacedConfigMap({ name: copyName('settings'), namespace });
    const again = await waitFor(
      'copy re-created',
      async () => {
        const copy = await readCopy();
        return copy && copy.metadata?.uid !== before?.metadata?.uid ? copy : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    expect(again.data).toEqual({ mode: 'blue', extra: 'yes' });
  });

  it('carries a host edit over, a removed key included', async () => {
    await host.core.replaceNamespacedConfigMap({
      name: 'settings',
      namespace,
      body: { metadata: { name: 'settings', namespace }, data: { mode: 'green' } },
    });
    const copy = await waitFor('copy follows', async () => {
      const current = await readCopy();
      return current?.data?.mode === 'green' ? current : undefined;
    });
    expect(copy.data).toEqual({ mode: 'green' });
  });

  it('keeps a copy through a quick scale-down and up, and deletes it once unused', async () => {
    const before = await readCopy();
    await scaleDeployment(host, namespace, 'app-0', 0);
    await waitFor('app-0 gone', async () =>
      (await host.core.listNamespacedPod({ namespace, labelSelector: 'app=app-0' })).items.length === 0
        ? true
        : undefined,
    );
    await scaleDeployment(host, namespace, 'app-0', 2);
    await waitForRunning(host, namespace, 'app=app-0', 2);
    expect((await readCopy())?.metadata?.uid).toBe(before?.metadata?.uid);

    await scaleDeployment(host, namespace, 'app-0', 0);
    await waitFor('copy of the unused object deleted', async () => ((await readCopy()) ? undefined : true), {
      timeoutMs: 30_000,
    });
    // The other remote's pods still use theirs.
    const other = await remote.core.readNamespacedConfigMap({ name: `settings.host.${nodes[1]}`, namespace });
    expect(other.data).toEqual({ mode: 'green' });
  });

  it('makes a remote namespace deleted under it again, and the pods run', async () => {
    const before = new Set(
      (await host.core.listNamespacedPod({ namespace, labelSelector: 'app=app-1' })).items.map(
        (p) => p.metadata?.uid,
      ),
    );
    await remote.core.deleteNamespace({ name: namespace });
    // Its delegates went with it (the host pods fail, as for any delegate deleted remotely); the
    // replacements need the namespace and the copies again.
    await waitFor(
      'replacements Running in a new namespace',
      async () => {
        const pods = await waitForRunning(host, namespace, 'app=app-1', 2, 1000).catch(() => undefined);
        const ns = await remote.core.readNamespace({ name: namespace }).catch(() => undefined);
        const fresh = pods?.every((p) => !before.has(p.metadata?.uid));
        return fresh && ns && !ns.metadata?.deletionTimestamp ? pods : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    const copy = await remote.core.readNamespacedSecret({ name: `token.host.${nodes[1]}`, namespace });
    expect(Buffer.from(copy.data?.t ?? '', 'base64').toString()).toBe('s3cret');
  });
});
