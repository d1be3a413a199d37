// High availability and sharding on the real clusters: 3 replicas share 4 remotes through Leases; the
// owner of two of them is killed (SIGKILL) in the middle of a burst of pods. Nothing is created twice,
// nothing is lost, no node goes NotReady, the nodes' kubelet endpoints follow the new owners and
// kubectl logs/exec work through them; killing the leader moves the webhook configuration. To spare
// the shared 2-core machine, the 4 remotes are the one `remote` cluster under 4 names and node names.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Lease, V1Node, V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusters } from '../cluster/fixture.ts';
import { freePorts } from '../cluster/ports.ts';
import { condition, kube, uniqueSuffix } from '../support/kube.ts';
import { criLine, kwokForNamespace, removeKwokForNamespace } from '../support/kwok.ts';
import { type SpillwayProcess, spawnSpillway } from '../support/process.ts';
import { writeConfig } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import { delegatesCollected, pinnedSpec } from '../support/workloads.ts';

const suffix = uniqueSuffix();
const leaseNamespace = `spillway-ha-${suffix}`;
const namespace = `ha-${suffix}`;
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
const remotes = ['a', 'b', 'c', 'd'].map((x) => ({
  name: `ha-${suffix}-${x}`,
  nodeName: `spillway-ha-${suffix}-${x}`,
}));
const nodeNames = remotes.map((r) => r.nodeName);
const webhookName = `spillway-burst.${leaseNamespace}`;

interface Replica {
  readonly identity: string;
  readonly kubeletPort: number;
  readonly webhookPort: number;
  readonly process: SpillwayProcess;
}
const replicas: Replica[] = [];
/** Every moment a virtual node was seen not Ready (the watcher polls all four). */
const notReady: string[] = [];
let watching = true;

async function leases(): Promise<V1Lease[]> {
  return (await host.coordination.listNamespacedLease({ namespace: leaseNamespace })).items;
}

/** Remote name → the replica identity (the configured name part) holding its Lease. */
async function owners(): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  for (const lease of await leases()) {
    const name = lease.metadata?.annotations?.['spillway.dev/remote'];
    const holder = lease.spec?.holderIdentity;
    if (name && holder) result.set(name, holder.split('_')[0] ?? holder);
  }
  return result;
}

const alive = () =>
  replicas.filter((r) => r.process.child.exitCode === null && r.process.child.signalCode === null);

async function node(name: string): Promise<V1Node | undefined> {
  return host.core.readNode({ name }).catch(() => undefined);
}

function createPod(remoteName: string, name: string): Promise<V1Pod> {
  return host.core.createNamespacedPod({
    namespace,
    body: { metadata: { name, labels: { app: 'ha' } }, spec: pinnedSpec(remoteName) },
  });
}

async function delegates(): Promise<V1Pod[]> {
  return (
    await remote.core.listNamespacedPod({ namespace, labelSelector: 'spillway.dev/managed-by=spillway' })
  ).items.filter((p) => nodeNames.includes(p.metadata?.labels?.['spillway.dev/virtual-node'] ?? ''));
}

beforeAll(async () => {
  await host.core.createNamespace({ body: { metadata: { name: leaseNamespace } } });
  await host.core.createNamespace({
    body: { metadata: { name: namespace, labels: { 'spillway.dev/burst': 'enabled' } } },
  });
  await kwokForNamespace(remote, namespace, { logs: criLine(new Date(), 'stdout', 'hello from the remote') });
  const config = await writeConfig({
    hostKubeconfig: clusters.host.kubeconfig,
    namespace: leaseNamespace,
    remotes: remotes.map((r) => ({
      name: r.name,
      nodeName: r.nodeName,
      kubeconfig: clusters.remote.kubeconfig,
    })),
    extra: { ha: { enabled: true }, webhook: { enabled: true }, logLevel: 'info' },
  });
  const ports = await freePorts(9);
  for (let i = 0; i < 3; i++) {
    const [kubeletPort, webhookPort, metricsPort] = ports.slice(i * 3, i * 3 + 3) as [number, number, number];
    const identity = `replica-${i}`;
    const args = ['--config', config, '--ha-identity', identity, '--kubelet-port', String(kubeletPort)];
    args.push('--webhook-port', String(webhookPort), '--metrics-port', String(metricsPort));
    replicas.push({ identity, kubeletPort, webhookPort, process: spawnSpillway(args) });
  }
  void (async () => {
    while (watching) {
      for (const name of nodeNames) {
        const current = await node(name);
        if (current && condition(current, 'Ready')?.status !== 'True') {
          notReady.push(`${new Date().toISOString()} ${name} ${JSON.stringify(condition(current, 'Ready'))}`);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  })();
});

afterAll(async () => {
  watching = false;
  await Promise.all(replicas.map((r) => r.process.stop('SIGTERM')));
  // The replicas' logs, for when a step failed.
  const logs = join(import.meta.dirname, '..', '..', '.spillway', 'test-logs');
  await mkdir(logs, { recursive: true });
  for (const r of replicas)
    await writeFile(join(logs, `ha-${r.identity}.log`), `${r.process.lines.join('\n')}\n`);
  await host.core.deleteNamespace({ name: namespace }).catch(() => {});
  await Promise.all(nodeNames.map((name) => host.core.deleteNode({ name }).catch(() => {})));
  await host.core.deleteNamespace({ name: leaseNamespace }).catch(() => {});
  await host.kubeConfig
    .makeApiClient((await import('@kubernetes/client-node')).AdmissionregistrationV1Api)
    .deleteMutatingWebhookConfiguration({ name: webhookName })
    .catch(() => {});
  await remote.core.deleteCollectionNamespacedPod({ namespace, gracePeriodSeconds: 0 }).catch(() => {});
  await delegatesCollected(remote, namespace);
  await removeKwokForNamespace(remote, namespace);
  await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
});

describe('high availability with 3 replicas and 4 remotes', () => {
  let victim: Replica;
  let moved: string[];

  it('spreads the remotes over the replicas, one owner each, and every node is Ready', async () => {
    const spread = await waitFor(
      'the 4 remotes owned by 3 replicas, at most 2 each',
      async () => {
        const current = await owners();
        if (current.size !== 4) return undefined;
        const counts = new Map<string, number>();
        for (const owner of current.values()) counts.set(owner, (counts.get(owner) ?? 0) + 1);
        return counts.size === 3 && Math.max(...counts.values()) === 2 ? current : undefined;
      },
      { timeoutMs: 120_000 },
    );
    for (const name of nodeNames) {
      await waitFor(`${name} Ready`, async () =>
        condition(await node(name), 'Ready')?.status === 'True' ? true : undefined,
      );
    }
    // Each node advertises the kubelet port of the replica that owns it.
    for (const r of remotes) {
      const owner = replicas.find((replica) => replica.identity === spread.get(r.name));
      await waitFor(`${r.nodeName} advertising its owner's port`, async () =>
        (await node(r.nodeName))?.status?.daemonEndpoints?.kubeletEndpoint?.Port === owner?.kubeletPort
          ? true
          : undefined,
      );
    }
    const counts = new Map<string, string[]>();
    for (const [name, owner] of spread) counts.set(owner, [...(counts.get(owner) ?? []), name]);
    const [identity, names] = [...counts].find(([, owned]) => owned.length === 2) as [string, string[]];
    victim = replicas.find((r) => r.identity === identity) as Replica;
    moved = names;
  }, 300_000);

  it('loses nothing and creates nothing twice when the owner of two remotes is killed mid-burst', async () => {
    const perRemote = 6;
    const created: string[] = [];
    for (const r of remotes) {
      for (let i = 0; i < perRemote / 2; i++) {
        const name = `${r.name.slice(-1)}-before-${i}`;
        await createPod(r.name, name);
        created.push(name);
      }
    }
    // Kill as soon as the victim's remotes have delegates being created, the burst still going on.
    await waitFor('a first delegate of the victim', async () =>
      (await delegates()).some((d) =>
        moved.some((m) => d.metadata?.labels?.['spillway.dev/virtual-node'] === `spillway-${m}`),
      )
        ? true
        : undefined,
    );
    const before = new Map((await delegates()).map((d) => [d.metadata?.name, d.metadata?.uid]));
    victim.process.child.kill('SIGKILL');
    await victim.process.exited;
    for (const r of remotes) {
      for (let i = 0; i < perRemote / 2; i++) {
        const name = `${r.name.slice(-1)}-after-${i}`;
        await createPod(r.name, name);
        created.push(name);
      }
    }
    await waitFor(
      `all ${created.length} pods Running`,
      async () => {
        const pods = (await host.core.listNamespacedPod({ namespace, labelSelector: 'app=ha' })).items;
        return pods.length === created.length && pods.every((p) => p.status?.phase === 'Running')
          ? pods
          : undefined;
      },
      { timeoutMs: 180_000 },
    );
    const remotePods = await delegates();
    // Exactly one delegate per host pod, none without one, none re-created.
    const byHostUid = new Map<string, number>();
    for (const d of remotePods) {
      const uid = d.metadata?.labels?.['spillway.dev/host-pod-uid'] ?? '';
      byHostUid.set(uid, (byHostUid.get(uid) ?? 0) + 1);
    }
    expect(remotePods.length).toBe(created.length);
    expect([...byHostUid.values()].every((count) => count === 1)).toBe(true);
    for (const d of remotePods) {
      if (before.has(d.metadata?.name)) expect(d.metadata?.uid).toBe(before.get(d.metadata?.name));
    }
    // The victim's remotes belong to the survivors now, and their nodes point at them.
    const current = await owners();
    for (const name of moved) {
      const owner = replicas.find((r) => r.identity === current.get(name));
      expect(owner && owner !== victim).toBe(true);
      await waitFor(`spillway-${name} advertising its new owner's port`, async () =>
        (await node(`spillway-${name}`))?.status?.daemonEndpoints?.kubeletEndpoint?.Port ===
        owner?.kubeletPort
          ? true
          : undefined,
      );
    }
    expect(notReady).toEqual([]);
  }, 300_000);

  it('serves kubectl logs and exec for the moved remotes through their new owner', async () => {
    const pod = `${moved[0]?.slice(-1)}-before-0`;
    const logs = await clusters.kubectl('host', ['-n', namespace, 'logs', pod]);
    expect(logs.stdout).toBe('hello from the remote\n');
    const exec = await clusters.kubectl('host', ['-n', namespace, 'exec', pod, '--', 'echo', 'hi']);
    expect(exec.stdout).toBe('hi\n');
  });

  it('fences a replica that was frozen past its Lease: it stops writing, the other keeps the remotes', async () => {
    // SIGSTOP stands for a long GC pause or a partition: the frozen replica cannot renew, the other
    // takes its remotes, and when it wakes up its renew deadline has long passed.
    const current = await owners();
    const [frozen, other] = alive() as [Replica, Replica];
    const frozenRemotes = remotes.filter((r) => current.get(r.name) === frozen.identity).map((r) => r.name);
    expect(frozenRemotes.length).toBeGreaterThan(0);
    frozen.process.child.kill('SIGSTOP');
    try {
      await waitFor('the other replica owning every remote', async () => {
        const now = await owners();
        return remotes.every((r) => now.get(r.name) === other.identity) ? true : undefined;
      });
      await host.core.createNamespacedPod({
        namespace,
        body: {
          metadata: { name: 'during-freeze', labels: { app: 'ha' } },
          spec: pinnedSpec(frozenRemotes[0] as string),
        },
      });
    } finally {
      frozen.process.child.kill('SIGCONT');
    }
    await waitFor('the woken replica noticing it lost its Leases', () =>
      frozenRemotes.every((name) =>
        frozen.process
          .logged('lost the Lease of remote; stopping it without draining')
          .some((e) => e.remote === name),
      )
        ? true
        : undefined,
    );
    await waitFor('the pod created during the freeze Running', async () => {
      const pod = await host.core
        .readNamespacedPod({ name: 'during-freeze', namespace })
        .catch(() => undefined);
      return pod?.status?.phase === 'Running' ? true : undefined;
    });
    // Nothing was written twice and no node went back to the frozen replica behind the other's back:
    // a remote returns to it only by a hand-over, which the other logs.
    const byHostUid = new Map<string, number>();
    for (const d of await delegates()) {
      const uid = d.metadata?.labels?.['spillway.dev/host-pod-uid'] ?? '';
      byHostUid.set(uid, (byHostUid.get(uid) ?? 0) + 1);
    }
    expect([...byHostUid.values()].every((count) => count === 1)).toBe(true);
    for (const name of frozenRemotes) {
      const port = (await node(`spillway-${name}`))?.status?.daemonEndpoints?.kubeletEndpoint?.Port;
      const handedBack = other.process
        .logged('handing remote over to another replica')
        .some((e) => e.remote === name);
      expect(port === other.kubeletPort || handedBack).toBe(true);
    }
    expect(notReady).toEqual([]);
  }, 300_000);

  it('moves the webhook configuration and the rest of the remotes when the leader dies', async () => {
    const leaderOf = async () => {
      const lease = (await leases()).find((l) => l.metadata?.name === 'spillway-leader');
      return replicas.find(
        (r) => r.identity === lease?.spec?.holderIdentity?.split('_')[0] && alive().includes(r),
      );
    };
    const admission = host.kubeConfig.makeApiClient(
      (await import('@kubernetes/client-node')).AdmissionregistrationV1Api,
    );
    const webhookPort = async () => {
      const configuration = await admission
        .readMutatingWebhookConfiguration({ name: webhookName })
        .catch(() => undefined);
      const url = configuration?.webhooks?.[0]?.clientConfig?.url;
      return url ? Number(new URL(url).port) : undefined;
    };
    const leader = await waitFor('a live leader pointing the webhook at itself', async () => {
      const current = await leaderOf();
      return current && (await webhookPort()) === current.webhookPort ? current : undefined;
    });
    leader.process.child.kill('SIGKILL');
    await leader.process.exited;
    const [survivor] = alive();
    await waitFor('the survivor leading and pointing the webhook at itself', async () => {
      const current = await leaderOf();
      return current === survivor && (await webhookPort()) === survivor?.webhookPort ? true : undefined;
    });
    await waitFor('every remote owned by the survivor', async () => {
      const current = await owners();
      return remotes.every((r) => current.get(r.name) === survivor?.identity) ? true : undefined;
    });
    // A burst pod (its namespace opted in) is mutated by the survivor's webhook.
    const burst = await host.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'burst-after-failover' },
        spec: { containers: [{ name: 'main', image: 'nginx:1.27' }] },
      },
    });
    expect(burst.spec?.tolerations?.some((t) => t.key === 'virtual-kubelet.io/provider')).toBe(true);
    await waitFor('all pods still Running on the survivor', async () => {
      const pods = (await host.core.listNamespacedPod({ namespace, labelSelector: 'app=ha' })).items;
      return pods.every((p) => p.status?.phase === 'Running') ? true : undefined;
    });
    expect((await delegates()).filter((d) => d.metadata?.labels?.app === 'ha').length).toBe(
      remotes.length * 6 + 1,
    );
    expect(notReady).toEqual([]);
  });
});
