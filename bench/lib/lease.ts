// How a node's heartbeat fares under load, seen from outside: every renewal of its Lease in
// kube-node-lease as the watch delivers it. The renew latency is the time from the renewTime the
// holder wrote into the request to the moment the update is observed (client queueing, the API
// server and the watch fan-out); the interval between renewals shows a holder that falls behind
// (a blocked event loop delays the renewal itself). The benchmark's own event-loop delay over the same
// window is reported beside it: a renewal observed late because the observer was busy is not
// Spillway's lateness.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Informer } from '../../src/kube/informer.ts';
import { type BenchCluster, benchLogger } from './api.ts';
import { maximum, percentile } from './stats.ts';

interface Lease {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: { renewTime?: string };
}

/** RFC 3339 with microseconds (MicroTime), to milliseconds with the fraction kept. */
function microTime(value: string): number {
  const match = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(value);
  if (!match) return Date.parse(value);
  return Date.parse(`${match[1]}Z`) + Number(match[2] ?? 0) * 1000;
}

export interface LeaseFigures {
  readonly renewals: number;
  readonly latencyMs: { p50: number; p99: number; max: number };
  readonly intervalMs: { p50: number; max: number };
  /** The benchmark process's own event-loop delay while it watched (part of every latency above). */
  readonly observerDelayMs?: { p99: number; max: number };
}

export class LeaseWatch {
  private readonly latencies: number[] = [];
  private readonly renewTimes: number[] = [];
  private readonly controller = new AbortController();
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });

  static async start(host: BenchCluster, nodeName: string): Promise<LeaseWatch> {
    const watch = new LeaseWatch();
    const informer = new Informer<Lease, Lease>({
      name: `bench/lease/${nodeName}`,
      client: host.client,
      path: '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases',
      fieldSelector: `metadata.name=${nodeName}`,
      cache: false,
      transform: (lease) => {
        watch.observe(lease);
        return lease;
      },
      logger: benchLogger,
    });
    informer.start(watch.controller.signal);
    await informer.ready;
    // The list delivered the lease as it was before; only renewals from now on count.
    watch.latencies.length = 0;
    watch.renewTimes.length = 0;
    watch.loopDelay.enable();
    return watch;
  }

  private observe(lease: Lease): void {
    const renewTime = lease.spec?.renewTime;
    if (!renewTime) return;
    const at = microTime(renewTime);
    if (this.renewTimes.at(-1) === at) return;
    this.renewTimes.push(at);
    this.latencies.push(Date.now() - at);
  }

  stop(): LeaseFigures {
    this.controller.abort();
    this.loopDelay.disable();
    const intervals = this.renewTimes.slice(1).map((t, i) => t - (this.renewTimes[i] as number));
    return {
      renewals: this.latencies.length,
      latencyMs: {
        p50: percentile(this.latencies, 50),
        p99: percentile(this.latencies, 99),
        max: maximum(this.latencies),
      },
      intervalMs: { p50: percentile(intervals, 50), max: maximum(intervals) },
      observerDelayMs: {
        p99: Math.round(this.loopDelay.percentile(99) / 1e6),
        max: Math.round(this.loopDelay.max / 1e6),
      },
    };
  }
}
