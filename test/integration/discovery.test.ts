// Dynamic remote clusters: a labelled Secret in Spillway's namespace adds a remote (and its node) at
// run time; deleting it removes both; a broken one is reported on the Secret.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import { condition, kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';

const suffix = uniqueSuffix();
const namespace = `spillway-disc-${suffix}`;
const host = kube(clusters.host.kubeconfig);
let spillway: Spillway;

beforeAll(async () => {
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    remotes: [],
    namespace,
    discovery: true,
  });
});

afterAll(async () => {
  await spillway?.stop();
  await host.core.deleteNamespace({ name: namespace }).catch(() => {});
});

describe('remote clusters from Secrets', () => {
  it('adds a node when a labelled Secret appears and removes it when the Secret is deleted', async () => {
    const remoteName = `disc-${suffix}`;
    const nodeName = `spillway-${remoteName}`;
    const kubeconfig = await readFile(clusters.remote.kubeconfig);
    await host.core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: 'remote-credentials', labels: { 'spillway.dev/remote-cluster': remoteName } },
        data: { kubeconfig: kubeconfig.toString('base64') },
      },
    });
    const node = await waitFor('discovered node Ready', async () => {
      const current = await host.core.readNode({ name: nodeName }).catch(() => undefined);
      return condition(current, 'Ready')?.status === 'True' ? current : undefined;
    });
    expect(node.metadata?.labels?.['spillway.dev/cluster']).toBe(remoteName);
    expect(spillway.registry.get(remoteName)?.spec.source).toBe(`Secret ${namespace}/remote-credentials`);

    await host.core.deleteNamespacedSecret({ name: 'remote-credentials', namespace });
    await waitFor('node removed', async () => {
      const gone = await host.core.readNode({ name: nodeName }).then(
        () => false,
        () => true,
      );
      return gone ? true : undefined;
    });
    expect(spillway.registry.get(remoteName)).toBeUndefined();
  });

  it('reports a Secret whose kubeconfig is unusable with a Warning event on the Secret', async () => {
    const secret = await host.core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: 'broken', labels: { 'spillway.dev/remote-cluster': `broken-${suffix}` } },
        stringData: {
          kubeconfig:
            'apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster:\n    server: "::not a url"\n',
        },
      },
    });
    const event = await waitFor('InvalidRemoteCluster event', async () => {
      const events = await host.core.listNamespacedEvent({
        namespace,
        fieldSelector: `involvedObject.uid=${secret.metadata?.uid}`,
      });
      return events.items.find((e) => e.reason === 'InvalidRemoteCluster');
    });
    expect(event.type).toBe('Warning');
    expect(event.message).toContain('broken');
    expect(spillway.registry.get(`broken-${suffix}`)).toBeUndefined();
  });
});
