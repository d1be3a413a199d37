// The streams benchmark's surroundings: the local host and remote clusters, a namespace with KWOK's
// answers for it (a CRI log file, local exec), a Spillway process serving a virtual node of its own,
// one pod there, and the process ids whose memory is watched (Spillway, both API servers). Cleaned
// up after the run, and after an aborted earlier one. The floor: one more pod in the host, on one of
// its own KWOK nodes, which the host API server reaches with no Spillway in between (what any kubelet
// costs on top of the host API server's own hop).
/* biome-ignore-all lint/suspicious/noConsole: a benchmark reports on the console */
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { kubeconfigPathOf, up } from '../../test/cluster/cli.ts';
import { LocalCluster } from '../../test/cluster/cluster.ts';
import { freePort } from '../../test/cluster/ports.ts';
import { type Kube, kube } from '../../test/support/kube.ts';
import { type KwokFixture, kwokForNamespace, removeKwokForNamespace } from '../../test/support/kwok.ts';
import { type SpillwayProcess, startSpillwayProcess } from '../../test/support/spillway-process.ts';
import { waitFor } from '../../test/support/wait.ts';
import { pinnedSpec, waitForRunning } from '../../test/support/workloads.ts';

const remoteName = 'bench-streams';
const nodeName = 'spillway-bench-streams';
const benchNamespace = /^bench-streams-\d+$/;
export const POD = 'app';
export const CONTAINER = 'main';
/** The pod on a host KWOK node. */
export const FLOOR_POD = 'floor';
const floorNode = 'host-node-0';

export interface StreamsEnv {
  readonly host: Kube;
  readonly remote: Kube;
  readonly hostKubeconfig: string;
  readonly remoteKubeconfig: string;
  readonly namespace: string;
  readonly kwok: KwokFixture;
  /** What the host's KWOK answers for the floor pod (the same files' contents are written to both). */
  readonly hostKwok: KwokFixture;
  readonly spillway: SpillwayProcess;
  /** Spillway's Prometheus endpoint. */
  readonly metricsUrl: string;
  readonly apiServerPids: { readonly host: number; readonly remote: number };
  close(): Promise<void>;
}

/** Namespaces (and their KWOK objects) an aborted earlier run left behind. */
async function removeLeftovers(host: Kube, remote: Kube): Promise<void> {
  const stale = new Set<string>();
  for (const k of [host, remote]) {
    for (const ns of (await k.core.listNamespace()).items) {
      const name = ns.metadata?.name ?? '';
      if (!benchNamespace.test(name)) continue;
      stale.add(name);
      // Host pods of a stopped virtual node have no kubelet to finalise them: force them away.
      await k.core.deleteCollectionNamespacedPod({ namespace: name, gracePeriodSeconds: 0 }).catch(() => {});
      await k.core.deleteNamespace({ name }).catch(() => {});
    }
  }
  for (const name of stale) {
    await removeKwokForNamespace(remote, name);
    await removeKwokForNamespace(host, name);
  }
  await host.core.deleteNode({ name: nodeName }).catch(() => {});
  if (stale.size > 0) console.log(`removed leftovers of an earlier run: ${[...stale].join(', ')}`);
}

async function apiServerPid(cluster: string): Promise<number> {
  const local = await LocalCluster.load(join(dirname(kubeconfigPathOf(cluster)), cluster));
  const pid = local.components().find((c) => c.name === 'kube-apiserver')?.pid;
  if (pid === undefined) throw new Error(`cluster ${cluster}: no kube-apiserver pid`);
  return pid;
}

async function waitForNode(host: Kube, spillway: SpillwayProcess): Promise<void> {
  await waitFor(
    'the virtual node Ready and untainted',
    async () => {
      if (spillway.child.exitCode !== null) throw new Error(`Spillway exited; see ${spillway.logFile}`);
      const node = await host.core.readNode({ name: nodeName });
      // Ready, and the host's node lifecycle controller has lifted any not-ready/unreachable taint.
      const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      const tainted = node.spec?.taints?.some((t) => t.key.startsWith('node.kubernetes.io/'));
      return ready && !tainted ? true : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
}

export async function startStreamsEnv(): Promise<StreamsEnv> {
  await up(['host', 'remote']);
  const hostKubeconfig = kubeconfigPathOf('host');
  const remoteKubeconfig = kubeconfigPathOf('remote');
  const host = kube(hostKubeconfig);
  const remote = kube(remoteKubeconfig);
  await removeLeftovers(host, remote);
  const namespace = `bench-streams-${Date.now()}`;
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  await remote.core.createNamespace({ body: { metadata: { name: namespace } } });
  const kwok = await kwokForNamespace(remote, namespace, { logs: '', pods: [POD] });
  const hostKwok = await kwokForNamespace(host, namespace, { logs: '', pods: [FLOOR_POD] });
  const metricsPort = await freePort();
  const spillway = await startSpillwayProcess({
    hostKubeconfig,
    hostClusterName: 'bench-streams',
    remotes: [{ name: remoteName, kubeconfig: remoteKubeconfig, nodeName }],
    // The idle section holds 1,000 follows of one pod (the default limit per pod is 500).
    kubelet: { maxSessionsPerPod: 5000 },
    // Debug: each session logs where its time went (bench/lib/phases.ts).
    extra: { logLevel: 'debug', metrics: { port: metricsPort, bindAddress: '127.0.0.1' } },
  });
  const close = async () => {
    // Spillway collects the delegate (also after a failure); wait so the next run starts on a quiet remote.
    await host.core.deleteNamespace({ name: namespace }).catch(() => {});
    await waitFor(
      'the delegate collected',
      async () =>
        (await remote.core.listNamespacedPod({ namespace })).items.length === 0 ? true : undefined,
      { timeoutMs: 120_000, intervalMs: 500 },
    ).catch(() => {});
    await spillway.stop();
    // Whatever a failed run left: host pods with no kubelet to finalise them, the node, the remote side.
    await host.core.deleteCollectionNamespacedPod({ namespace, gracePeriodSeconds: 0 }).catch(() => {});
    await host.core.deleteNode({ name: nodeName }).catch(() => {});
    await remote.core.deleteCollectionNamespacedPod({ namespace, gracePeriodSeconds: 0 }).catch(() => {});
    await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
    await removeKwokForNamespace(remote, namespace);
    await removeKwokForNamespace(host, namespace);
    await rm(kwok.dir, { recursive: true, force: true });
    await rm(hostKwok.dir, { recursive: true, force: true });
  };
  try {
    console.log(`==> Spillway (pid ${spillway.pid}, log ${spillway.logFile})`);
    await waitForNode(host, spillway);
    await host.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: POD, labels: { bench: 'streams' } },
        spec: pinnedSpec(remoteName, {}, { name: CONTAINER, image: 'busybox' }),
      },
    });
    await host.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: FLOOR_POD, labels: { bench: 'floor' } },
        spec: { nodeName: floorNode, containers: [{ name: CONTAINER, image: 'busybox' }] },
      },
    });
    await waitForRunning(host, namespace, 'bench=streams', 1, 180_000);
    await waitForRunning(host, namespace, 'bench=floor', 1, 60_000);
    await waitForRunning(remote, namespace, 'bench=streams', 1, 60_000);
    return {
      host,
      remote,
      hostKubeconfig,
      remoteKubeconfig,
      namespace,
      kwok,
      hostKwok,
      spillway,
      metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
      apiServerPids: { host: await apiServerPid('host'), remote: await apiServerPid('remote') },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
