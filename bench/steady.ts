// Steady arrivals: pods bound to the virtual node as a Poisson process of R per second for a couple
// of minutes, a load the API servers carry, so what Spillway adds to each pod (host Running observed
// minus delegate Running observed) is its own latency, not queueing. The floor gets the same arrivals.
/* biome-ignore-all lint/suspicious/noConsole: a benchmark reports on the console */
import { cleanupWithoutSpillway, cleanupWithSpillway } from './lib/cleanup.ts';
import { type BenchContext, type Mirrored, measure, progress, startSpillway } from './lib/context.ts';
import { FLOOR_NODE, Floor } from './lib/floor.ts';
import { type ClusterCalls, callsBetween, readAllCalls } from './lib/identity.ts';
import { RssSampler } from './lib/spillway.ts';
import { PodTimeline } from './lib/timeline.ts';
import { benchNamespace, createPoisson } from './lib/workload.ts';

const STEADY_NODE = 'spillway-bench-steady';

export interface SteadyResult {
  readonly perSecond: number;
  readonly seconds: number;
  readonly spillway: Mirrored & { rssMiB: number; cpuSeconds: number; calls: ClusterCalls };
  readonly floor?: Mirrored;
}

async function arrivals(
  context: BenchContext,
  namespace: string,
  nodeName: string,
  perSecond: number,
  seconds: number,
): Promise<Mirrored> {
  const hostTimeline = await PodTimeline.start(context.host, namespace);
  const remoteTimeline = await PodTimeline.start(context.remote, namespace);
  try {
    const names = await createPoisson(context.host, namespace, nodeName, perSecond, seconds);
    await hostTimeline.waitForRunning(names.length, 300_000, progress('Running on the host', names.length));
    return measure(hostTimeline, remoteTimeline);
  } finally {
    hostTimeline.stop();
    remoteTimeline.stop();
  }
}

export async function runSteady(
  context: BenchContext,
  rates: readonly number[],
  seconds: number,
  floors = true,
): Promise<SteadyResult[]> {
  const { host, remote } = context;
  const results: SteadyResult[] = [];
  for (const perSecond of rates) {
    console.log(`\n==> Spillway, ${perSecond} pods/s (Poisson) for ${seconds} s`);
    const spillway = await startSpillway(context, `steady-${perSecond}`, [
      { name: 'steady', nodeName: STEADY_NODE },
    ]);
    const namespace = `bench-${Date.now()}`;
    let mirrored: SteadyResult['spillway'];
    try {
      await benchNamespace(host, namespace);
      const callsBefore = await readAllCalls(host, remote);
      const cpuBefore = spillway.cpuSeconds();
      const rss = new RssSampler(spillway, 1000);
      const figures = await arrivals(context, namespace, STEADY_NODE, perSecond, seconds);
      mirrored = {
        ...figures,
        rssMiB: rss.stop().medianMiB,
        cpuSeconds: spillway.cpuSeconds() - cpuBefore,
        calls: callsBetween(callsBefore, await readAllCalls(host, remote)),
      };
    } finally {
      console.log('  cleanup');
      await cleanupWithSpillway(host, remote, [namespace], spillway);
    }
    if (!floors) {
      results.push({ perSecond, seconds, spillway: mirrored });
      continue;
    }
    console.log(`==> bare-API floor, ${perSecond} pods/s (Poisson) for ${seconds} s`);
    const floorNamespace = `floor-${Date.now()}`;
    await benchNamespace(host, floorNamespace);
    const floor = await Floor.start(host, remote, floorNamespace);
    let floorFigures: Mirrored;
    try {
      floorFigures = await arrivals(context, floorNamespace, FLOOR_NODE, perSecond, seconds);
    } finally {
      console.log('  cleanup');
      await cleanupWithoutSpillway(host, remote, [floorNamespace]);
      await floor.stop();
    }
    results.push({ perSecond, seconds, spillway: mirrored, floor: floorFigures });
  }
  return results;
}
