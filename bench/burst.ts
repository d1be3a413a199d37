// The burst: N pods bound to the virtual node at once, mirrored until all are Running on the host;
// then, with them all held, a quiet while (steady memory, CPU, calls), and a restart (SIGKILL, start
// again, time until every pod is verified and the calls that took). Next to the floor doing the same
// burst, and, for the restart, a bare list of both sides (the least any restart must read).
/* biome-ignore-all lint/suspicious/noConsole: a benchmark reports on the console */
import { sleep } from './lib/api.ts';
import { cleanupWithoutSpillway, cleanupWithSpillway } from './lib/cleanup.ts';
import { type BenchContext, type Mirrored, measure, progress, startSpillway } from './lib/context.ts';
import { FLOOR_NODE, Floor } from './lib/floor.ts';
import { type ClusterCalls, callsBetween, readAllCalls } from './lib/identity.ts';
import { type LeaseFigures, LeaseWatch } from './lib/lease.ts';
import { RssSampler, type SpillwayProcess } from './lib/spillway.ts';
import { PodTimeline } from './lib/timeline.ts';
import { benchNamespace, createBurst } from './lib/workload.ts';

export const BURST_NODE = 'spillway-bench';
const HOLD_MS = 30_000;

export interface BurstOptions {
  readonly pods: number;
  /** Hold the pods a while, then SIGKILL and restart Spillway holding them. */
  readonly restart: boolean;
}

export interface ProcessFigures {
  readonly idleRssMiB: number;
  /** Of idleRssMiB, file-backed pages (the node binary's code); absent in older results. */
  readonly idleFileRssMiB?: number;
  readonly peakRssMiB: number;
  readonly cpuSeconds: number;
}

export interface BurstResult {
  readonly spillway: Mirrored & ProcessFigures & { calls: ClusterCalls; lease: LeaseFigures };
  readonly hold?: { seconds: number; rssMiB: number; cpuSeconds: number; calls: ClusterCalls };
  readonly restart?: RestartResult;
  readonly problems: Record<string, number>;
}

export interface RestartResult {
  readonly verifiedSeconds: number;
  readonly pods: number;
  readonly calls: ClusterCalls;
  readonly peakRssMiB: number;
  readonly cpuSeconds: number;
  /** The floor: listing the host pods of the node and their delegates, page by page. */
  readonly floorListSeconds: number;
}

const names = (count: number) => Array.from({ length: count }, (_, i) => `pod-${i}`);

export async function runBurst(context: BenchContext, options: BurstOptions): Promise<BurstResult> {
  const { host, remote } = context;
  const label = `burst-${options.pods}`;
  console.log(`\n==> Spillway, burst of ${options.pods} pods`);
  const spillway = await startSpillway(context, label, [{ name: 'bench', nodeName: BURST_NODE }]);
  const since = Date.now();
  await sleep(15_000);
  const idleRssMiB = spillway.rssMiB();
  const idleFileRssMiB = spillway.fileRssMiB();
  const namespace = `bench-${Date.now()}`;
  try {
    await benchNamespace(host, namespace);
    const hostTimeline = await PodTimeline.start(host, namespace);
    const remoteTimeline = await PodTimeline.start(remote, namespace);
    const lease = await LeaseWatch.start(host, BURST_NODE);
    const callsBefore = await readAllCalls(host, remote);
    const cpuBefore = spillway.cpuSeconds();
    const rss = new RssSampler(spillway);
    await createBurst(host, namespace, BURST_NODE, names(options.pods));
    await hostTimeline.waitForRunning(options.pods, 300_000, progress('Running on the host', options.pods));
    const cpuSeconds = spillway.cpuSeconds() - cpuBefore;
    const { peakMiB } = rss.stop();
    const calls = callsBetween(callsBefore, await readAllCalls(host, remote));
    const leaseFigures = lease.stop();
    hostTimeline.stop();
    remoteTimeline.stop();
    const result: BurstResult = {
      spillway: {
        ...measure(hostTimeline, remoteTimeline),
        idleRssMiB,
        idleFileRssMiB,
        peakRssMiB: peakMiB,
        cpuSeconds,
        calls,
        lease: leaseFigures,
      },
      problems: {},
    };
    if (!options.restart) {
      await spillway.heapSnapshot();
      return { ...result, problems: spillway.problems(since) };
    }
    const hold = await holdPods(context, spillway);
    const restart = await restartHolding(context, spillway, options.pods);
    // Last: writing a snapshot takes about as much memory again as the heap holds.
    await spillway.heapSnapshot();
    return { ...result, hold, restart, problems: spillway.problems(since) };
  } finally {
    console.log('  cleanup');
    await cleanupWithSpillway(host, remote, [namespace], spillway);
  }
}

/** Nothing changes for a while: what holding the pods costs (memory, CPU, calls). */
async function holdPods(context: BenchContext, spillway: SpillwayProcess): Promise<BurstResult['hold']> {
  const callsBefore = await readAllCalls(context.host, context.remote);
  const cpuBefore = spillway.cpuSeconds();
  const rss = new RssSampler(spillway, 1000);
  await sleep(HOLD_MS);
  const { medianMiB } = rss.stop();
  return {
    seconds: HOLD_MS / 1000,
    rssMiB: medianMiB,
    cpuSeconds: spillway.cpuSeconds() - cpuBefore,
    calls: callsBetween(callsBefore, await readAllCalls(context.host, context.remote)),
  };
}

async function restartHolding(
  context: BenchContext,
  spillway: SpillwayProcess,
  pods: number,
): Promise<RestartResult> {
  const { host, remote } = context;
  console.log(`  SIGKILL holding ${pods} Running pods, then start again`);
  await spillway.kill();
  const callsBefore = await readAllCalls(host, remote);
  spillway.start();
  const rss = new RssSampler(spillway);
  const verified = await spillway.waitForLog(/^every pod verified/, spillway.startedAt, 600_000);
  const cpuSeconds = spillway.cpuSeconds();
  const { peakMiB } = rss.stop();
  // Calls still in flight when the line was written land within a moment.
  await sleep(1000);
  const calls = callsBetween(callsBefore, await readAllCalls(host, remote));
  const started = Date.now();
  await listAll(host, '/api/v1/pods', { fieldSelector: `spec.nodeName=${BURST_NODE}` });
  await listAll(remote, '/api/v1/pods', { labelSelector: `spillway.dev/virtual-node=${BURST_NODE}` });
  return {
    verifiedSeconds: (verified.time - spillway.startedAt) / 1000,
    pods: Number(verified.pods ?? 0),
    calls,
    peakRssMiB: peakMiB,
    cpuSeconds,
    floorListSeconds: (Date.now() - started) / 1000,
  };
}

async function listAll(
  cluster: BenchContext['host'],
  path: string,
  query: Record<string, string>,
): Promise<number> {
  let count = 0;
  let token: string | undefined;
  do {
    const page = await cluster.client.get<{ items: unknown[]; metadata: { continue?: string } }>(path, {
      query: { ...query, limit: 500, continue: token },
    });
    count += page.items.length;
    token = page.metadata.continue || undefined;
  } while (token);
  return count;
}

export interface FloorResult extends Mirrored {
  readonly lease: LeaseFigures;
  readonly failures: number;
}

export async function runFloorBurst(context: BenchContext, pods: number): Promise<FloorResult> {
  const { host, remote } = context;
  console.log(`==> bare-API floor, burst of ${pods} pods`);
  const namespace = `floor-${Date.now()}`;
  await benchNamespace(host, namespace);
  const floor = await Floor.start(host, remote, namespace);
  try {
    const hostTimeline = await PodTimeline.start(host, namespace);
    const remoteTimeline = await PodTimeline.start(remote, namespace);
    const lease = await LeaseWatch.start(host, FLOOR_NODE);
    await createBurst(host, namespace, FLOOR_NODE, names(pods));
    await hostTimeline.waitForRunning(pods, 300_000, progress('Running on the host', pods));
    hostTimeline.stop();
    remoteTimeline.stop();
    return { ...measure(hostTimeline, remoteTimeline), lease: lease.stop(), failures: floor.failures };
  } finally {
    console.log('  cleanup');
    await cleanupWithoutSpillway(host, remote, [namespace]);
    await floor.stop();
  }
}
