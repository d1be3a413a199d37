// Several virtual nodes in one Spillway: the one remote cluster configured N times under different
// names (N virtual nodes, each with its own informers, queue and lease), M pods bound to each at once.
// Its floor is the single-node floor for the same total of pods.
/* biome-ignore-all lint/suspicious/noConsole: a benchmark reports on the console */
import { inParallel, sleep } from './lib/api.ts';
import { cleanupWithSpillway } from './lib/cleanup.ts';
import { type BenchContext, type Mirrored, measure, startSpillway } from './lib/context.ts';
import { type ClusterCalls, callsBetween, readAllCalls } from './lib/identity.ts';
import { type LeaseFigures, LeaseWatch } from './lib/lease.ts';
import { RssSampler } from './lib/spillway.ts';
import { PodTimeline, type PodTimes } from './lib/timeline.ts';
import { benchNamespace, createPod } from './lib/workload.ts';

export interface MultiResult {
  readonly nodes: number;
  readonly podsPerNode: number;
  readonly spillway: Mirrored & {
    idleRssMiB: number;
    idleFileRssMiB?: number;
    peakRssMiB: number;
    cpuSeconds: number;
    calls: ClusterCalls;
    perNodePodsPerSecond: number[];
    lease: LeaseFigures[];
  };
  readonly problems: Record<string, number>;
}

export async function runMulti(
  context: BenchContext,
  nodes: number,
  podsPerNode: number,
): Promise<MultiResult> {
  const { host, remote } = context;
  console.log(`\n==> Spillway, ${nodes} virtual nodes × ${podsPerNode} pods`);
  const remotes = Array.from({ length: nodes }, (_, i) => ({
    name: `bench-${i}`,
    nodeName: `spillway-bench-${i}`,
  }));
  const spillway = await startSpillway(context, `multi-${nodes}x${podsPerNode}`, remotes);
  const since = Date.now();
  await sleep(15_000);
  const idleRssMiB = spillway.rssMiB();
  const idleFileRssMiB = spillway.fileRssMiB();
  const stamp = Date.now();
  const namespaces = remotes.map((_, i) => `bench-${stamp}-${i}`);
  try {
    for (const namespace of namespaces) await benchNamespace(host, namespace);
    const timelines = await Promise.all(
      namespaces.map(async (ns) => ({
        host: await PodTimeline.start(host, ns),
        remote: await PodTimeline.start(remote, ns),
      })),
    );
    const leases = await Promise.all(remotes.map((r) => LeaseWatch.start(host, r.nodeName)));
    const callsBefore = await readAllCalls(host, remote);
    const cpuBefore = spillway.cpuSeconds();
    const rss = new RssSampler(spillway);
    // Interleaved, so every node gets its pods at the same pace.
    const work = Array.from({ length: nodes * podsPerNode }, (_, i) => ({
      node: i % nodes,
      pod: Math.floor(i / nodes),
    }));
    await inParallel(work, 50, ({ node, pod }) =>
      createPod(host, namespaces[node] as string, `pod-${pod}`, remotes[node]?.nodeName as string),
    );
    let reported = 0;
    await Promise.all(
      timelines.map((t) =>
        t.host.waitForRunning(podsPerNode, 300_000, () => {
          if (Date.now() - reported < 10_000) return;
          reported = Date.now();
          const running = timelines.reduce((sum, x) => sum + x.host.running(), 0);
          console.log(`  Running on the host: ${running}/${nodes * podsPerNode}`);
        }),
      ),
    );
    const cpuSeconds = spillway.cpuSeconds() - cpuBefore;
    const { peakMiB } = rss.stop();
    const calls = callsBetween(callsBefore, await readAllCalls(host, remote));
    const leaseFigures = leases.map((l) => l.stop());
    for (const t of timelines) {
      t.host.stop();
      t.remote.stop();
    }
    const perNode = timelines.map((t) => measure(t.host, t.remote));
    await spillway.heapSnapshot();
    return {
      nodes,
      podsPerNode,
      spillway: {
        ...combined(timelines),
        idleRssMiB,
        idleFileRssMiB,
        peakRssMiB: peakMiB,
        cpuSeconds,
        calls,
        perNodePodsPerSecond: perNode.map((m) => m.podsPerSecond),
        lease: leaseFigures,
      },
      problems: spillway.problems(since),
    };
  } finally {
    console.log('  cleanup');
    await cleanupWithSpillway(host, remote, namespaces, spillway);
  }
}

/** All nodes' pods as one timeline (pod names repeat across namespaces, so they are prefixed). */
function combined(timelines: { host: PodTimeline; remote: PodTimeline }[]): Mirrored {
  const host = { pods: new Map<string, PodTimes>() };
  const remote = { pods: new Map<string, PodTimes>() };
  timelines.forEach((t, i) => {
    for (const [name, times] of t.host.pods) host.pods.set(`${i}/${name}`, times);
    for (const [name, times] of t.remote.pods) remote.pods.set(`${i}/${name}`, times);
  });
  return measure(host, remote);
}
