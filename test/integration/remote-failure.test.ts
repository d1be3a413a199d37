// Remote health against real clusters: a remote control plane stopped and started again (the same
// code as `npm run clusters -- stop|start`), two remotes of which one fails, and a remote that is
// unreachable from the start.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import { freePort } from '../cluster/ports.ts';
import { condition, kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';

const suffix = uniqueSuffix();
const host = kube(clusters.host.kubeconfig);
const healthyNode = `spillway-ok-${suffix}`;
const failingNode = `spillway-b-${suffix}`;
const graceSeconds = 5;
let spillway: Spillway;

async function readiness(name: string) {
  const node = await host.core.readNode({ name });
  return condition(node, 'Ready');
}

beforeAll(async () => {
  const remoteB = await clusters.ensure('remote-b', 'remote');
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    node: { remoteUnreachableGraceSeconds: graceSeconds, probeIntervalSeconds: 1 },
    remotes: [
      { name: `ok-${suffix}`, kubeconfig: clusters.remote.kubeconfig, nodeName: healthyNode },
      { name: `b-${suffix}`, kubeconfig: remoteB.kubeconfig, nodeName: failingNode },
    ],
  });
});

afterAll(async () => {
  await spillway?.stop();
  await clusters.start('remote-b').catch(() => {});
  for (const name of [healthyNode, failingNode]) await host.core.deleteNode({ name }).catch(() => {});
});

describe('a remote cluster outage', () => {
  it('turns only that remote’s node NotReady within the grace period, and Ready again when it returns', async () => {
    for (const name of [healthyNode, failingNode]) {
      await waitFor(`${name} Ready`, async () =>
        (await readiness(name))?.status === 'True' ? true : undefined,
      );
    }
    const stoppedAt = Date.now();
    await clusters.stop('remote-b');

    let healthyStayedReady = true;
    const notReady = await waitFor(
      'failing node NotReady',
      async () => {
        if ((await readiness(healthyNode))?.status !== 'True') healthyStayedReady = false;
        const ready = await readiness(failingNode);
        return ready?.status === 'False' ? ready : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const detectedAfterMs = Date.now() - stoppedAt;
    expect(notReady.reason).toBe('RemoteClusterUnreachable');
    expect(notReady.message).toContain('unreachable since');
    // grace + one probe interval + the node-status write; well inside the host's node-monitor grace (50 s)
    expect(detectedAfterMs).toBeLessThan((graceSeconds + 10) * 1000);
    expect(healthyStayedReady).toBe(true);

    // The host reacts as to any NotReady node: it stops scheduling there.
    const tainted = await waitFor('not-ready taint from the node lifecycle controller', async () => {
      const node = await host.core.readNode({ name: failingNode });
      return node.spec?.taints?.some((t) => t.key === 'node.kubernetes.io/not-ready') ? node : undefined;
    });
    expect(tainted.spec?.taints?.some((t) => t.key === 'virtual-kubelet.io/provider')).toBe(true);

    // The lease keeps being renewed: Spillway itself is alive, only its remote is not.
    const renewTime = async () =>
      new Date(
        (await host.coordination.readNamespacedLease({ name: failingNode, namespace: 'kube-node-lease' }))
          .spec?.renewTime as unknown as string,
      ).getTime();
    const renewedBefore = await renewTime();
    await waitFor('lease renewed during the outage', async () =>
      (await renewTime()) > renewedBefore ? true : undefined,
    );

    // Back as soon as the remote answers again (how fast is the lease benchmark's business, not a test's).
    await clusters.start('remote-b');
    await waitFor(
      'failing node Ready again',
      async () => ((await readiness(failingNode))?.status === 'True' ? true : undefined),
      { intervalMs: 250 },
    );
    expect((await readiness(healthyNode))?.status).toBe('True');
  });
});

describe('a remote unreachable from the start', () => {
  it('gives a NotReady node with a reason instead of a crash', async () => {
    const deadPort = await freePort();
    const dir = await mkdtemp(join(tmpdir(), 'spillway-dead-'));
    const kubeconfig = join(dir, 'kubeconfig');
    const original = await readFile(clusters.remote.kubeconfig, 'utf8');
    await writeFile(
      kubeconfig,
      original.replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://127.0.0.1:${deadPort}`),
    );
    const nodeName = `spillway-dead-${suffix}`;
    const dead = await startSpillway({
      hostKubeconfig: clusters.host.kubeconfig,
      node: { remoteUnreachableGraceSeconds: 3, probeIntervalSeconds: 1 },
      remotes: [{ name: `dead-${suffix}`, kubeconfig, nodeName }],
    });
    try {
      const connecting = await waitFor('node registered', async () =>
        readiness(nodeName).catch(() => undefined),
      );
      expect(connecting.status).toBe('False');
      const unreachable = await waitFor('node unreachable', async () => {
        const ready = await readiness(nodeName);
        return ready?.reason === 'RemoteClusterUnreachable' ? ready : undefined;
      });
      expect(unreachable.status).toBe('False');
      expect(unreachable.message).toContain('ECONNREFUSED');
      const node = await host.core.readNode({ name: nodeName });
      expect(node.status?.allocatable?.pods).toBe('0');
    } finally {
      await dead.stop();
      await host.core.deleteNode({ name: nodeName }).catch(() => {});
    }
  });
});
