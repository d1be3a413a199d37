// What every scenario runs against: the two clusters (admin access for the benchmark itself),
// Spillway's own credentials there, simulated remote nodes with room for the pods, and the figures
// every scenario reports the same way.
/* biome-ignore-all lint/suspicious/noConsole: a benchmark reports on the console */
import { mkdir, rm } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { createSimulatedNode } from '../../test/cluster/bootstrap.ts';
import { kubeconfigPathOf, up } from '../../test/cluster/cli.ts';
import { NO_RESOURCE_METRICS_LABEL } from '../../test/cluster/components.ts';
import { freePort } from '../../test/cluster/ports.ts';
import { type BenchCluster, benchCluster, deleteIfExists } from './api.ts';
import { cleanupWithoutSpillway } from './cleanup.ts';
import { benchIdentity, removeFlowSchemas } from './identity.ts';
import {
  benchDir,
  buildOnce,
  imageNodeFlags,
  killLeftoverSpillway,
  type RemoteEntry,
  SpillwayProcess,
} from './spillway.ts';
import { summary } from './stats.ts';
import type { PodTimeline } from './timeline.ts';

export interface BenchOptions {
  readonly qps: number;
  readonly workers: number;
  readonly profile: boolean;
  /** The most pods any scenario will hold at once (simulated remote nodes are made for them). */
  readonly maxPods: number;
  readonly nodeFlags?: readonly string[];
}

export interface BenchContext {
  readonly host: BenchCluster;
  readonly remote: BenchCluster;
  readonly spillwayHostKubeconfig: string;
  readonly spillwayRemoteKubeconfig: string;
  readonly options: BenchOptions;
  readonly nodeFlags: readonly string[];
}

const NODE_PODS = 550;
const benchNamespacePattern = /^(bench|floor)-/;
const remoteNodeName = (i: number) => `bench-node-${i}`;

/** Namespaces an aborted earlier run left behind (no Spillway runs now: pods are forced away). */
async function removeLeftovers(host: BenchCluster, remote: BenchCluster): Promise<void> {
  const stale = new Set<string>();
  for (const cluster of [host, remote]) {
    const list = await cluster.client.get<{ items: { metadata: { name: string } }[] }>('/api/v1/namespaces');
    for (const ns of list.items)
      if (benchNamespacePattern.test(ns.metadata.name)) stale.add(ns.metadata.name);
  }
  if (stale.size === 0) return;
  console.log(`removing leftovers of an earlier run: ${[...stale].join(', ')}`);
  await cleanupWithoutSpillway(host, remote, [...stale]);
}

export async function prepare(options: BenchOptions): Promise<BenchContext> {
  await up(['host', 'remote']);
  buildOnce();
  killLeftoverSpillway();
  const host = benchCluster('host', kubeconfigPathOf('host'));
  const remote = benchCluster('remote', kubeconfigPathOf('remote'));
  await removeLeftovers(host, remote);
  const spillwayHostKubeconfig = join(benchDir, 'host-spillway.kubeconfig');
  const spillwayRemoteKubeconfig = join(benchDir, 'remote-spillway.kubeconfig');
  await mkdir(benchDir, { recursive: true });
  if (options.profile) await rm(join(benchDir, 'profiles'), { recursive: true, force: true });
  await benchIdentity(host, spillwayHostKubeconfig);
  await benchIdentity(remote, spillwayRemoteKubeconfig);
  const nodes = Math.ceil(options.maxPods / (NODE_PODS - 50));
  for (let i = 0; i < nodes; i++) {
    await deleteIfExists(remote.client, `/api/v1/nodes/${remoteNodeName(i)}`);
    await createSimulatedNode(remote.kubeconfig, {
      name: remoteNodeName(i),
      cpu: '64',
      memory: '256Gi',
      pods: String(NODE_PODS),
      // KWOK's simulated usage for 10,000 pods, scraped every 10 s, would cost more than the pods.
      labels: { [NO_RESOURCE_METRICS_LABEL]: 'off' },
    });
  }
  return {
    host,
    remote,
    spillwayHostKubeconfig,
    spillwayRemoteKubeconfig,
    options,
    nodeFlags: options.nodeFlags ?? imageNodeFlags(),
  };
}

export async function teardown(context: BenchContext): Promise<void> {
  for (let i = 0; ; i++) {
    const exists = await context.remote.client.get(`/api/v1/nodes/${remoteNodeName(i)}`).then(
      () => true,
      () => false,
    );
    if (!exists) break;
    await deleteIfExists(context.remote.client, `/api/v1/nodes/${remoteNodeName(i)}`);
  }
  await removeFlowSchemas(context.host);
  await removeFlowSchemas(context.remote);
  context.host.client.close();
  context.remote.client.close();
}

/** A Spillway for one scenario, started, its virtual nodes Ready, idle for a moment. */
export async function startSpillway(
  context: BenchContext,
  label: string,
  remotes: readonly RemoteEntry[],
): Promise<SpillwayProcess> {
  const spillway = await SpillwayProcess.create({
    label,
    hostKubeconfig: context.spillwayHostKubeconfig,
    remoteKubeconfig: context.spillwayRemoteKubeconfig,
    remotes,
    kubeletPort: await freePort(),
    qps: context.options.qps,
    workers: context.options.workers,
    nodeFlags: context.nodeFlags,
    profileDir: context.options.profile ? join(benchDir, 'profiles', label) : undefined,
  });
  if (spillway.options.profileDir) await mkdir(spillway.options.profileDir, { recursive: true });
  spillway.start();
  await spillway.waitForNodesReady(context.host);
  return spillway;
}

export interface Mirrored {
  readonly pods: number;
  readonly seconds: number;
  readonly podsPerSecond: number;
  /** Host pod Running observed − its delegate Running observed (what the provider adds). */
  readonly addedMs: { p50: number; p99: number };
  /** Host pod seen → host Running, and the same for the delegate. */
  readonly hostStartupMs: { p50: number; p99: number };
  readonly remoteStartupMs: { p50: number; p99: number };
}

type Timeline = Pick<PodTimeline, 'pods'>;

export function measure(host: Timeline, remote: Timeline): Mirrored {
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
    hostStartup.push(times.runningAt - times.seenAt);
    remoteStartup.push(delegate.runningAt - delegate.seenAt);
    added.push(times.runningAt - delegate.runningAt);
  }
  const seconds = (last - first) / 1000;
  return {
    pods: added.length,
    seconds,
    podsPerSecond: added.length / seconds,
    addedMs: summary(added),
    hostStartupMs: summary(hostStartup),
    remoteStartupMs: summary(remoteStartup),
  };
}

export function machine() {
  return {
    cpus: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

export const progress = (what: string, total: number) => (done: number) =>
  console.log(`  ${what}: ${done}/${total}`);
