// Local clusters for people answer `kubectl logs`, `exec` and `attach` for every pod, as a cluster's
// kubelets do (test/cluster/kwok/answer-every-pod.yaml), without any per-namespace configuration:
// directly in the remote, and through the host for a pod on the virtual node.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import type { ClusterInfo } from '../cluster/provider.ts';
import { kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import { delegatesCollected, pinnedSpec, waitForRunning } from '../support/workloads.ts';

const suffix = uniqueSuffix();
const remoteName = `every-${suffix}`;
const nodeName = `spillway-every-${suffix}`;
const namespace = `someones-own-${suffix}`;
const host = kube(clusters.host.kubeconfig);
let remoteInfo: ClusterInfo;
let spillway: Spillway;

beforeAll(async () => {
  remoteInfo = await clusters.ensure('remote-every-pod', 'remote', { answerEveryPod: true });
  const remote = kube(remoteInfo.kubeconfig);
  await remote.core.createNamespace({ body: { metadata: { name: namespace } } });
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    remotes: [{ name: remoteName, kubeconfig: remoteInfo.kubeconfig, nodeName }],
  });
  // A pod created directly in the remote, and one through the host's virtual node.
  await remote.core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name: 'direct', labels: { app: 'direct' } },
      spec: pinnedSpec('none', { nodeSelector: {} }),
    },
  });
  await host.core.createNamespacedPod({
    namespace,
    body: { metadata: { name: 'mirrored', labels: { app: 'mirrored' } }, spec: pinnedSpec(remoteName) },
  });
  await waitForRunning(remote, namespace, 'app=direct', 1);
  await waitForRunning(host, namespace, 'app=mirrored', 1);
});

afterAll(async () => {
  await host.core.deleteNamespace({ name: namespace }).catch(() => {});
  const remote = kube(remoteInfo.kubeconfig);
  await delegatesCollected(remote, namespace);
  await spillway?.stop();
  await host.core.deleteNode({ name: nodeName }).catch(() => {});
  await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
});

describe('KWOK answers for every pod in a cluster for people', () => {
  it('serves logs and exec for a pod nobody configured anything for', async () => {
    const remote = (args: string[]) =>
      clusters.kubectl('remote-every-pod', ['-n', namespace, ...args], { allowFailure: true });
    const logs = await remote(['logs', 'direct']);
    expect(logs.exitCode).toBe(0);
    expect(logs.stdout).toContain('this pod is simulated by KWOK');
    const exec = await remote(['exec', 'direct', '--', 'sh', '-c', 'echo hi from $0']);
    expect(exec.stdout).toBe('hi from sh\n');
    expect(exec.exitCode).toBe(0);
  });

  it('does the same through the host for a pod on the virtual node', async () => {
    const hostKubectl = (args: string[]) =>
      clusters.kubectl('host', ['-n', namespace, ...args], { allowFailure: true });
    const logs = await waitFor('logs through the host', async () => {
      const result = await hostKubectl(['logs', 'mirrored']);
      return result.exitCode === 0 ? result : undefined;
    });
    expect(logs.stdout).toContain('this pod is simulated by KWOK');
    const exec = await hostKubectl(['exec', 'mirrored', '--', 'echo', 'hello']);
    expect(exec).toMatchObject({ stdout: 'hello\n', exitCode: 0 });
  });
});
