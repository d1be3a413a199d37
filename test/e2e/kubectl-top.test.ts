// `kubectl top` on the host for pods that run in a remote cluster: the host's metrics-server scrapes
// Spillway's kubelet port like any kubelet's, and Spillway answers with the delegates' usage, read from
// the remote's own metrics.k8s.io API (KWOK simulates the usage from pod annotations).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { parseQuantity } from '../../src/kube/quantity.ts';
import { clusters } from '../cluster/fixture.ts';
import { freePort } from '../cluster/ports.ts';
import { kube, uniqueSuffix } from '../support/kube.ts';
import { type Credentials, kubeconfigCredentials, kubeletGet } from '../support/kubelet-client.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import { pinnedSpec, tearDownVirtualNode, waitForRunning } from '../support/workloads.ts';

const suffix = uniqueSuffix();
const remoteName = `top-${suffix}`;
const nodeName = `spillway-top-${suffix}`;
const namespace = `top-${suffix}`;
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
// Simulated usage of each pod (KWOK reads these annotations on the delegate, copied from the host pod).
const usage = {
  small: { cpu: '250m', memory: '64Mi' },
  large: { cpu: '1500m', memory: '512Mi' },
} as const;
// metrics-server turns two scrapes of a counter into a rate, through two metrics-servers: allow time.
const METRICS_TIMEOUT = { timeoutMs: 100_000, intervalMs: 2_000 };
let spillway: Spillway;
let port: number;
let admin: Credentials;

/** `kubectl top pod` rows: name → { cpu in millicores, memory in bytes }. */
async function topPods(cluster: 'host' | 'remote'): Promise<Map<string, { cpu: bigint; memory: bigint }>> {
  const result = await clusters.kubectl(cluster, ['top', 'pod', '-n', namespace, '--no-headers'], {
    allowFailure: true,
  });
  const rows = new Map<string, { cpu: bigint; memory: bigint }>();
  if (result.exitCode !== 0) return rows;
  for (const line of result.stdout.trim().split('\n')) {
    const [name, cpu, memory] = line.trim().split(/\s+/);
    if (name && cpu && memory)
      rows.set(name, {
        cpu: parseQuantity(cpu) / 1_000_000n,
        memory: parseQuantity(memory) / 1_000_000_000n,
      });
  }
  return rows;
}

beforeAll(async () => {
  admin = await kubeconfigCredentials(clusters.host.kubeconfig);
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  port = await freePort();
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    kubeletPort: port,
    remotes: [{ name: remoteName, kubeconfig: clusters.remote.kubeconfig, nodeName }],
  });
  for (const [name, { cpu, memory }] of Object.entries(usage)) {
    await host.core.createNamespacedPod({
      namespace,
      body: {
        metadata: {
          name,
          labels: { app: 'top' },
          annotations: { 'kwok.x-k8s.io/usage-cpu': cpu, 'kwok.x-k8s.io/usage-memory': memory },
        },
        spec: pinnedSpec(remoteName, {}, { name: 'main' }),
      },
    });
  }
  await waitForRunning(host, namespace, 'app=top', 2);
});

afterAll(async () => {
  await tearDownVirtualNode({ host, remote, spillway, nodeName, namespaces: [namespace] });
});

describe('kubectl top', () => {
  it('shows the pods on a virtual node with the usage their delegates have in the remote cluster', async () => {
    const onHost = await waitFor(
      'kubectl top pod on the host',
      async () => {
        const rows = await topPods('host');
        return rows.size === 2 && [...rows.values()].every((r) => r.cpu > 0n) ? rows : undefined;
      },
      METRICS_TIMEOUT,
    );
    const onRemote = await topPods('remote');
    expect([...onHost.keys()].sort()).toEqual(['large', 'small']);
    for (const [name, expected] of Object.entries(usage)) {
      const row = onHost.get(name);
      // Memory is a gauge and passes through exactly; CPU is a rate of a counter, so close to the
      // simulated usage (and to what the remote itself reports), not exact.
      expect(row?.memory).toBe(parseQuantity(expected.memory) / 1_000_000_000n);
      const cpu = Number(parseQuantity(expected.cpu) / 1_000_000n);
      expect(Number(row?.cpu)).toBeGreaterThan(cpu * 0.8);
      expect(Number(row?.cpu)).toBeLessThan(cpu * 1.2);
      expect(onRemote.get(name)?.memory).toBe(row?.memory);
    }
  });

  it('shows the virtual node using the sum of its pods', async () => {
    const row = await waitFor(
      'kubectl top node',
      async () => {
        const result = await clusters.kubectl('host', ['top', 'node', nodeName, '--no-headers'], {
          allowFailure: true,
        });
        const [, cpu, , memory] = result.stdout.trim().split(/\s+/);
        return result.exitCode === 0 && cpu && memory && cpu !== '<unknown>' ? { cpu, memory } : undefined;
      },
      METRICS_TIMEOUT,
    );
    const memory = parseQuantity(row.memory);
    expect(memory).toBe(parseQuantity('576Mi'));
    const millicores = Number(parseQuantity(row.cpu) / 1_000_000n);
    expect(millicores).toBeGreaterThan(1750 * 0.8);
    expect(millicores).toBeLessThan(1750 * 1.2);
  });

  it('answers /stats/summary with the host pods’ names and UIDs', async () => {
    const pods = await host.core.listNamespacedPod({ namespace });
    const uids = Object.fromEntries(pods.items.map((p) => [p.metadata?.name, p.metadata?.uid]));
    const summary = await waitFor(
      'a summary with both pods',
      async () => {
        const response = await kubeletGet(port, '/stats/summary', admin);
        if (response.status !== 200) throw new Error(`/stats/summary: ${response.status} ${response.body}`);
        const body = JSON.parse(response.body) as StatsSummary;
        return body.pods.filter((p) => p.podRef.namespace === namespace).length === 2 ? body : undefined;
      },
      METRICS_TIMEOUT,
    );
    expect(summary.node.nodeName).toBe(nodeName);
    for (const pod of summary.pods) {
      expect(pod.podRef.uid).toBe(uids[pod.podRef.name]);
      expect(pod.containers.map((c) => c.name)).toEqual(['main']);
      const expected = usage[pod.podRef.name as keyof typeof usage];
      expect(BigInt(pod.memory.workingSetBytes)).toBe(parseQuantity(expected.memory) / 1_000_000_000n);
      expect(pod.cpu.usageCoreNanoSeconds).toBeGreaterThan(0);
      expect(Date.parse(pod.startTime)).toBeGreaterThan(Date.now() - 10 * 60_000);
    }
  });
});

interface StatsSummary {
  node: { nodeName: string };
  pods: {
    podRef: { name: string; namespace: string; uid: string };
    startTime: string;
    containers: { name: string }[];
    cpu: { usageCoreNanoSeconds: number };
    memory: { workingSetBytes: number };
  }[];
}
