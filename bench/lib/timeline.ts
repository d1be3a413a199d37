// When each pod of a namespace was first seen and first seen Running and Ready, taken on arrival of
// watch events (millisecond timestamps, as the SIG-scalability pod-startup SLI measures them). Built on
// Spillway's informer, which re-watches after a dropped or timed-out connection.
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { ClusterClient } from '../../src/kube/client.ts';
import { Informer } from '../../src/kube/informer.ts';

export interface PodTimes {
  seenAt: number;
  runningAt?: number;
}

export class PodTimeline {
  readonly pods = new Map<string, PodTimes>();
  private readonly controller = new AbortController();
  private runningCount = 0;

  static async start(kubeConfig: KubeConfig, namespace: string): Promise<PodTimeline> {
    const timeline = new PodTimeline();
    const logger = pino({ level: 'warn' });
    const client = new ClusterClient({ name: 'bench', kubeConfig, logger, qps: 1000, burst: 1000 });
    const informer = new Informer<V1Pod, { metadata: V1Pod['metadata'] }>({
      name: `bench/${namespace}`,
      client,
      path: `/api/v1/namespaces/${namespace}/pods`,
      // Nothing is kept but the name: the timeline records times as events arrive.
      transform: (pod) => {
        timeline.observe(pod);
        return { metadata: { name: pod.metadata?.name, namespace: pod.metadata?.namespace } };
      },
      logger,
    });
    informer.start(timeline.controller.signal);
    await informer.ready;
    return timeline;
  }

  private observe(pod: V1Pod): void {
    const name = pod.metadata?.name;
    if (!name) return;
    const now = Date.now();
    const times = this.pods.get(name) ?? { seenAt: now };
    this.pods.set(name, times);
    const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    if (times.runningAt === undefined && pod.status?.phase === 'Running' && ready) {
      times.runningAt = now;
      this.runningCount++;
    }
  }

  running(): number {
    return this.runningCount;
  }

  async waitForRunning(count: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.running() < count) {
      if (Date.now() > deadline)
        throw new Error(`only ${this.running()} of ${count} pods Running after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  stop(): void {
    this.controller.abort();
  }
}
