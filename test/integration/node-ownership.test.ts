// Spillway never touches a Node it does not own, adopts its own after a restart, leaves its node to
// expire on shutdown by default, and deletes it when configured to.
import { afterAll, describe, expect, it } from 'vitest';
import { clusters } from '../cluster/fixture.ts';
import { condition, kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';

const suffix = uniqueSuffix();
const host = kube(clusters.host.kubeconfig);
const created: string[] = [];

afterAll(async () => {
  for (const name of created) await host.core.deleteNode({ name }).catch(() => {});
});

async function ready(name: string) {
  return waitFor(`${name} Ready`, async () => {
    const node = await host.core.readNode({ name }).catch(() => undefined);
    return condition(node, 'Ready')?.status === 'True' ? node : undefined;
  });
}

describe('node ownership', () => {
  it('leaves a same-named node it does not own untouched and says so in an event', async () => {
    const nodeName = `foreign-${suffix}`;
    created.push(nodeName);
    await host.core.createNode({ body: { metadata: { name: nodeName, labels: { owner: 'someone-else' } } } });
    const spillway = await startSpillway({
      hostKubeconfig: clusters.host.kubeconfig,
      remotes: [{ name: `foreign-${suffix}`, kubeconfig: clusters.remote.kubeconfig, nodeName }],
    });
    try {
      const event = await waitFor('NodeNotOwned event', async () => {
        const events = await host.core.listNamespacedEvent({
          namespace: 'default',
          fieldSelector: `involvedObject.name=${nodeName}`,
        });
        return events.items.find((e) => e.reason === 'NodeNotOwned');
      });
      expect(event.type).toBe('Warning');
      const node = await host.core.readNode({ name: nodeName });
      expect(node.metadata?.labels).toEqual({ owner: 'someone-else' });
      // The API server's admission and the node lifecycle controller may taint a node that never
      // reported status (node.kubernetes.io/*); nothing else may appear, and no status is written.
      const foreignTaints = (node.spec?.taints ?? []).filter((t) => !t.key.startsWith('node.kubernetes.io/'));
      expect(foreignTaints).toEqual([]);
      const conditionsByOthers = (node.status?.conditions ?? []).filter(
        (c) => c.reason !== 'NodeStatusNeverUpdated',
      );
      expect(conditionsByOthers).toEqual([]);
    } finally {
      await spillway.stop();
    }
    const after = await host.core.readNode({ name: nodeName });
    expect(after.metadata?.labels).toEqual({ owner: 'someone-else' });
  });

  it('adopts its own node after a restart without re-creating it, and keeps it on shutdown by default', async () => {
    const nodeName = `spillway-adopt-${suffix}`;
    created.push(nodeName);
    const options = {
      hostKubeconfig: clusters.host.kubeconfig,
      remotes: [{ name: `adopt-${suffix}`, kubeconfig: clusters.remote.kubeconfig, nodeName }],
    };
    const first = await startSpillway(options);
    const original = await ready(nodeName);
    await first.stop();
    const kept = await host.core.readNode({ name: nodeName });
    expect(kept.metadata?.uid).toBe(original.metadata?.uid);

    const second = await startSpillway(options);
    try {
      const remote = second.registry.get(`adopt-${suffix}`);
      await waitFor('lease renewed by the new process', async () =>
        (remote?.lease.renewals ?? 0) > 0 ? true : undefined,
      );
      const adopted = await ready(nodeName);
      expect(adopted.metadata?.uid).toBe(original.metadata?.uid);
      // No NotReady flap on restart: Ready never left True.
      expect(condition(adopted, 'Ready')?.lastTransitionTime).toEqual(
        condition(original, 'Ready')?.lastTransitionTime,
      );
    } finally {
      await second.stop();
    }
  });

  it('deletes its node on shutdown when node.deleteOnShutdown is set', async () => {
    const nodeName = `spillway-del-${suffix}`;
    created.push(nodeName);
    const spillway = await startSpillway({
      hostKubeconfig: clusters.host.kubeconfig,
      node: { deleteOnShutdown: true },
      remotes: [{ name: `del-${suffix}`, kubeconfig: clusters.remote.kubeconfig, nodeName }],
    });
    await ready(nodeName);
    await spillway.stop();
    const gone = await host.core.readNode({ name: nodeName }).then(
      () => false,
      () => true,
    );
    expect(gone).toBe(true);
  });
});
