// Spillway killed with SIGKILL in the middle of creating 200 delegates, then restarted: it adopts what
// exists, creates what is missing, and ends with exactly one delegate per host pod and no orphans.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusters } from '../cluster/fixture.ts';
import { kube, uniqueSuffix } from '../support/kube.ts';
import { writeConfig } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import { VIRTUAL_NODE_TOLERATION } from '../support/workloads.ts';

const suffix = uniqueSuffix();
const remoteName = `crash-${suffix}`;
const nodeName = `spillway-crash-${suffix}`;
const namespace = `crash-${suffix}`;
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
const main = join(import.meta.dirname, '..', '..', 'src', 'main.ts');
const podCount = 200;
let config: string;
let running: ChildProcess | undefined;

function startSpillwayProcess(): ChildProcess {
  const child = spawn(process.execPath, [main, 'run', '--config', config], { stdio: 'ignore' });
  running = child;
  return child;
}

async function delegates() {
  const list = await remote.core.listNamespacedPod({
    namespace,
    labelSelector: `spillway.dev/virtual-node=${nodeName}`,
  });
  return list.items;
}

beforeAll(async () => {
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  config = await writeConfig({
    hostKubeconfig: clusters.host.kubeconfig,
    remotes: [{ name: remoteName, kubeconfig: clusters.remote.kubeconfig, nodeName }],
    // Throttled so that the kill lands in the middle of the creations.
    extra: { remoteQps: 20, remoteBurst: 20 },
  });
});

afterAll(async () => {
  await host.core.deleteNamespace({ name: namespace }).catch(() => {});
  await waitFor('delegates collected', async () =>
    (await delegates()).length === 0 ? true : undefined,
  ).catch(() => {});
  running?.kill('SIGKILL');
  await host.core.deleteNode({ name: nodeName }).catch(() => {});
  await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
});

describe('a crash in the middle of a burst', () => {
  it(`ends with exactly ${podCount} delegates and no orphans after SIGKILL and restart`, async () => {
    const first = startSpillwayProcess();
    await waitFor('virtual node registered', async () =>
      host.core.readNode({ name: nodeName }).catch(() => undefined),
    );
    const created: Promise<unknown>[] = [];
    for (let i = 0; i < podCount; i++) {
      created.push(
        host.core.createNamespacedPod({
          namespace,
          body: {
            metadata: { name: `burst-${i}`, labels: { app: 'burst' } },
            spec: {
              nodeName,
              tolerations: [VIRTUAL_NODE_TOLERATION],
              containers: [{ name: 'main', image: 'nginx' }],
            },
          },
        }),
      );
    }
    await Promise.all(created);
    const beforeKill = await waitFor(
      'some delegates created',
      async () => {
        const current = await delegates();
        return current.length >= 20 ? current : undefined;
      },
      { intervalMs: 100 },
    );
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    const afterKill = await delegates();
    expect(afterKill.length).toBeLessThan(podCount);

    startSpillwayProcess();
    const final = await waitFor(
      `${podCount} host pods Running`,
      async () => {
        const pods = await host.core.listNamespacedPod({ namespace });
        return pods.items.filter((p) => p.status?.phase === 'Running').length === podCount
          ? pods.items
          : undefined;
      },
      { timeoutMs: 120_000 },
    );
    const remotePods = await delegates();
    expect(remotePods).toHaveLength(podCount);
    const hostUids = new Set(final.map((p) => p.metadata?.uid));
    const delegateHostUids = remotePods.map((d) => d.metadata?.labels?.['spillway.dev/host-pod-uid']);
    expect(new Set(delegateHostUids).size).toBe(podCount);
    expect(delegateHostUids.every((uid) => hostUids.has(uid))).toBe(true);
    // What existed before the kill was adopted, not re-created.
    const survivingUids = new Set(remotePods.map((d) => d.metadata?.uid));
    expect(afterKill.every((d) => survivingUids.has(d.metadata?.uid))).toBe(true);
    expect(beforeKill.length).toBeGreaterThanOrEqual(20);
  });
});
