// `npm run bench -- mirror --pods N`: how fast Spillway mirrors N pods already bound to its virtual
// node, and what it adds, next to a bare-API floor (a minimal client doing only the same two writes:
// remote create, host status patch) in the same run on the same clusters.
/* biome-ignore-all lint/suspicious/noConsole: a benchmark reports on the console */
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  Watch,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { createSimulatedNode } from '../test/cluster/bootstrap.ts';
import { kubeconfigPathOf, up } from '../test/cluster/cli.ts';
import { cpuSeconds, rssBytes, sampleRss } from './lib/process-stats.ts';
import { formatTable, percentile } from './lib/stats.ts';
import { PodTimeline } from './lib/timeline.ts';

export interface MirrorOptions {
  readonly pods: number;
  readonly qps: number;
  readonly workers: number;
}

interface Measured {
  readonly pods: number;
  readonly seconds: number;
  readonly podsPerSecond: number;
  readonly addedMs: { p50: number; p99: number };
  readonly hostStartupMs: { p50: number; p99: number };
  readonly remoteStartupMs: { p50: number; p99: number };
}

const root = join(import.meta.dirname, '..');
const toleration = { key: 'virtual-kubelet.io/provider', operator: 'Exists' };

function api(path: string) {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(path);
  return { kubeConfig, core: kubeConfig.makeApiClient(CoreV1Api) };
}

async function inParallel<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

function measure(host: PodTimeline, remote: PodTimeline): Measured {
  const added: number[] = [];
  const hostStartup: number[] = [];
  const remoteStartup: number[] = [];
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  for (const [name, times] of host.pods) {
    const delegate = remote.pods.get(name);
    if (times.runningAt === undefined || delegate?.runningAt === undefined) continue;
    first = Math.min(first, times.seenAt);
    last = Math.max(last, times.runningAt);
    const hostMs = times.runningAt - times.seenAt;
    const remoteMs = delegate.runningAt - delegate.seenAt;
    hostStartup.push(hostMs);
    remoteStartup.push(remoteMs);
    added.push(hostMs - remoteMs);
  }
  const seconds = (last - first) / 1000;
  const summary = (values: number[]) => ({ p50: percentile(values, 50), p99: percentile(values, 99) });
  return {
    pods: added.length,
    seconds,
    podsPerSecond: added.length / seconds,
    addedMs: summary(added),
    hostStartupMs: summary(hostStartup),
    remoteStartupMs: summary(remoteStartup),
  };
}

const benchNamespace = /^(bench|floor)-\d+$/;

/** Namespaces an aborted earlier run left behind: pods forced away on the host, namespaces deleted. */
async function removeLeftovers(host: CoreV1Api, remote: CoreV1Api): Promise<void> {
  const stale: string[] = [];
  for (const core of [host, remote]) {
    for (const ns of (await core.listNamespace()).items) {
      const name = ns.metadata?.name ?? '';
      if (!benchNamespace.test(name)) continue;
      stale.push(name);
      // Host pods of a stopped virtual node have no kubelet to finalise them: force them away.
      await core.deleteCollectionNamespacedPod({ namespace: name, gracePeriodSeconds: 0 }).catch(() => {});
      await core.deleteNamespace({ name }).catch(() => {});
    }
  }
  if (stale.length > 0) console.log(`removed leftovers of an earlier run: ${[...new Set(stale)].join(', ')}`);
  await waitUntilEmpty(remote, stale);
}

async function waitUntilEmpty(
  core: CoreV1Api,
  namespaces: readonly string[],
  timeoutMs = 180_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const namespace of namespaces) {
    while (Date.now() < deadline) {
      const left = await core.listNamespacedPod({ namespace, limit: 1 }).catch(() => ({ items: [] }));
      if (left.items.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

async function createBoundPods(
  core: CoreV1Api,
  namespace: string,
  nodeName: string,
  count: number,
): Promise<void> {
  const names = Array.from({ length: count }, (_, i) => `pod-${i}`);
  await inParallel(names, 50, (name) =>
    core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name, labels: { bench: 'mirror' } },
        spec: { nodeName, tolerations: [toleration], containers: [{ name: 'main', image: 'nginx' }] },
      },
    }),
  );
}

async function runSpillway(options: MirrorOptions, hostPath: string, remotePath: string) {
  const host = api(hostPath);
  const remote = api(remotePath);
  const nodeName = 'spillway-bench';
  const configFile = join(root, '.spillway', 'bench', 'spillway.yaml');
  await mkdir(join(root, '.spillway', 'bench'), { recursive: true });
  await writeFile(
    configFile,
    stringify({
      hostClusterName: 'bench',
      host: { kubeconfig: hostPath, qps: options.qps, burst: options.qps },
      remotes: [{ name: 'bench', kubeconfig: remotePath, nodeName }],
      remoteQps: options.qps,
      remoteBurst: options.qps,
      pods: { workers: options.workers },
      discovery: { enabled: false },
      logLevel: 'warn',
    }),
  );
  const logFile = join(root, '.spillway', 'bench', 'spillway.log');
  const child = spawn(process.execPath, [join(root, 'src', 'main.ts'), 'run', '--config', configFile], {
    stdio: ['ignore', openSync(logFile, 'w'), openSync(logFile, 'a')],
  });
  const pid = child.pid as number;
  let namespace: string | undefined;
  try {
    for (let i = 0; ; i++) {
      const node = await host.core.readNode({ name: nodeName }).catch(() => undefined);
      if (node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) break;
      if (i > 120) throw new Error('virtual node did not become Ready');
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    namespace = `bench-${Date.now()}`;
    await host.core.createNamespace({ body: { metadata: { name: namespace } } });
    const hostTimeline = await PodTimeline.start(host.kubeConfig, namespace);
    const remoteTimeline = await PodTimeline.start(remote.kubeConfig, namespace);
    const idleRss = rssBytes(pid);
    const cpuBefore = cpuSeconds(pid);
    const rss = sampleRss(pid);
    await createBoundPods(host.core, namespace, nodeName, options.pods);
    await hostTimeline.waitForRunning(options.pods, 600_000);
    const cpu = cpuSeconds(pid) - cpuBefore;
    const peakRss = rss.stop();
    hostTimeline.stop();
    remoteTimeline.stop();
    const result = measure(hostTimeline, remoteTimeline);
    return { ...result, cpuSeconds: cpu, idleRssMiB: idleRss / 2 ** 20, peakRssMiB: peakRss / 2 ** 20 };
  } finally {
    // Spillway collects the delegates (also after a failure); wait so the next run starts on a quiet remote.
    if (namespace) {
      await host.core.deleteNamespace({ name: namespace }).catch(() => {});
      await waitUntilEmpty(remote.core, [namespace]);
      await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
    }
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    await host.core.deleteNode({ name: nodeName }).catch(() => {});
  }
}

/** The floor: no rate limits, no translation logic, no caches; just the writes Spillway must make. */
async function runFloor(options: MirrorOptions, hostPath: string, remotePath: string) {
  const host = api(hostPath);
  const remote = api(remotePath);
  const nodeName = 'bench-floor';
  await host.core.deleteNode({ name: nodeName }).catch(() => {});
  await host.core.createNode({
    body: {
      metadata: { name: nodeName },
      status: {
        conditions: [{ type: 'Ready', status: 'True', reason: 'Bench', lastHeartbeatTime: new Date() }],
      },
    },
  });
  const namespace = `floor-${Date.now()}`;
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  await remote.core.createNamespace({ body: { metadata: { name: namespace } } });
  const hostTimeline = await PodTimeline.start(host.kubeConfig, namespace);
  const remoteTimeline = await PodTimeline.start(remote.kubeConfig, namespace);
  const mirrored = new Set<string>();
  const onHost = await new Watch(host.kubeConfig).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    {},
    (phase: string, pod: V1Pod) => {
      const name = pod.metadata?.name as string;
      if (phase !== 'ADDED' || mirrored.has(name)) return;
      mirrored.add(name);
      const containers = (pod.spec?.containers ?? []).map((c) => ({ name: c.name, image: c.image }));
      remote.core
        .createNamespacedPod({ namespace, body: { metadata: { name }, spec: { containers } } })
        .catch((error) => {
          console.error(`floor: creating ${name} failed: ${error}`);
        });
    },
    () => {},
  );
  const statused = new Set<string>();
  const onRemote = await new Watch(remote.kubeConfig).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    {},
    (_phase: string, pod: V1Pod) => {
      const name = pod.metadata?.name as string;
      if (pod.status?.phase !== 'Running' || statused.has(name)) return;
      statused.add(name);
      host.core
        .patchNamespacedPodStatus(
          {
            name,
            namespace,
            body: {
              status: { phase: 'Running', podIP: pod.status.podIP, conditions: pod.status.conditions },
            },
          },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        )
        .catch((error) => console.error(`floor: status of ${name} failed: ${error}`));
    },
    () => {},
  );
  try {
    await createBoundPods(host.core, namespace, nodeName, options.pods);
    await hostTimeline.waitForRunning(options.pods, 600_000);
    return measure(hostTimeline, remoteTimeline);
  } finally {
    onHost.abort();
    onRemote.abort();
    hostTimeline.stop();
    remoteTimeline.stop();
    await host.core.deleteNamespace({ name: namespace }).catch(() => {});
    await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
    await host.core.deleteNode({ name: nodeName }).catch(() => {});
  }
}

export async function benchMirror(options: MirrorOptions): Promise<void> {
  await up(['host', 'remote']);
  const hostPath = kubeconfigPathOf('host');
  const remotePath = kubeconfigPathOf('remote');
  const remote = api(remotePath);
  await removeLeftovers(api(hostPath).core, remote.core);
  // Room for the pods: simulated nodes of 500 pods each, removed afterwards.
  const extraNodes = Array.from({ length: Math.ceil(options.pods / 450) }, (_, i) => `bench-node-${i}`);
  for (const name of extraNodes) {
    await remote.core.deleteNode({ name }).catch(() => {});
    await createSimulatedNode(remotePath, { name, cpu: '64', memory: '256Gi', pods: '500' });
  }
  try {
    console.log(`\n==> Spillway: ${options.pods} pods (qps ${options.qps}, ${options.workers} workers)`);
    const spillway = await runSpillway(options, hostPath, remotePath);
    console.log(`==> bare-API floor: ${options.pods} pods`);
    const floor = await runFloor(options, hostPath, remotePath);
    const rows = [
      [
        '',
        'pods/s',
        'added p50 ms',
        'added p99 ms',
        'host start p50 ms',
        'host start p99 ms',
        'remote start p50 ms',
        'CPU s',
        'peak RSS MiB',
      ],
      [
        'spillway',
        spillway.podsPerSecond,
        spillway.addedMs.p50,
        spillway.addedMs.p99,
        spillway.hostStartupMs.p50,
        spillway.hostStartupMs.p99,
        spillway.remoteStartupMs.p50,
        spillway.cpuSeconds,
        spillway.peakRssMiB,
      ],
      [
        'floor',
        floor.podsPerSecond,
        floor.addedMs.p50,
        floor.addedMs.p99,
        floor.hostStartupMs.p50,
        floor.hostStartupMs.p99,
        floor.remoteStartupMs.p50,
        '-',
        '-',
      ],
    ];
    console.log(`\n${formatTable(rows)}\n`);
    const result = {
      benchmark: 'mirror',
      date: new Date().toISOString(),
      machine: {
        cpus: (await import('node:os')).cpus().length,
        memoryGiB: Math.round((await import('node:os')).totalmem() / 2 ** 30),
        node: process.version,
      },
      options,
      spillway,
      floor,
    };
    await mkdir(join(root, 'bench', 'results'), { recursive: true });
    const file = join(
      root,
      'bench',
      'results',
      `mirror-${options.pods}-${result.date.replace(/[:.]/g, '-')}.json`,
    );
    await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`written ${file}`);
  } finally {
    for (const name of extraNodes) await remote.core.deleteNode({ name }).catch(() => {});
  }
}
