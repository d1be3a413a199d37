// When each pod of a namespace was first seen and first seen Running and Ready, taken on arrival of
// watch events (millisecond timestamps, as the SIG-scalability pod-startup SLI measures them). Built on
// Spillway's informer as a stream (nothing cached), which re-watches after a dropped or timed-out
// connection.
import type { V1Pod } from '@kubernetes/client-node';
import { Informer } from '../../src/kube/informer.ts';
import { type BenchCluster, benchLogger, sleep } from './api.ts';

export interface PodTimes {
  seenAt: number;
  runningAt?: number;
}

export class PodTimeline {
  readonly pods = new Map<string, PodTimes>();
  private readonly controller = new AbortController();
  private runningCount = 0;
  private lastProgressAt = Date.now();

  static async start(cluster: BenchCluster, namespace: string): Promise<PodTimeline> {
    const timeline = new PodTimeline();
    const informer = new Informer<V1Pod, V1Pod>({
      name: `bench/${cluster.name}/${namespace}`,
      client: cluster.client,
      path: `/api/v1/namespaces/${namespace}/pods`,
      cache: false,
      transform: (pod) => {
        timeline.observe(pod);
        return pod;
      },
      logger: benchLogger,
    });
    informer.start(timeline.controller.signal);
    await informer.ready;
    return timeline;
  }

  private observe(pod: V1Pod): void {
    const name = pod.metadata?.name;
    if (!name) return;
    const now = Date.now();
    let times = this.pods.get(name);
    if (!times) {
      times = { seenAt: now };
      this.pods.set(name, times);
    }
    const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    if (times.runningAt === undefined && pod.status?.phase === 'Running' && ready) {
      times.runningAt = now;
      this.runningCount++;
      this.lastProgressAt = now;
    }
  }

  running(): number {
    return this.runningCount;
  }

  /** Waits for `count` pods Running; fails only when none more started for `stallMs`. */
  async waitForRunning(
    count: number,
    stallMs = 300_000,
    progress?: (running: number) => void,
  ): Promise<void> {
    this.lastProgressAt = Date.now();
    let reported = 0;
    while (this.running() < count) {
      if (Date.now() - this.lastProgressAt > stallMs)
        throw new Error(`only ${this.running()} of ${count} pods Running, none more for ${stallMs / 1000} s`);
      if (progress && Date.now() - reported > 10_000) {
        reported = Date.now();
        progress(this.running());
      }
      await sleep(50);
    }
  }

  stop(): void {
    this.controller.abort();
  }
}
