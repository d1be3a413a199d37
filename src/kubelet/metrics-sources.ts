// Where a virtual node's resource usage comes from, per remote cluster:
// - metrics-api: the remote's metrics.k8s.io PodMetrics (its own metrics-server). Needs only read access
//   to pods.metrics.k8s.io, not nodes/proxy (which would also open every remote kubelet's exec API),
//   so it is preferred. PodMetrics give CPU as a rate; it is integrated into the cumulative counter a
//   kubelet reports, so a scraper computing rates from two scrapes gets the remote's rate back.
// - kubelet: each remote kubelet's /metrics/resource through the remote API server's node proxy.
// `auto` uses metrics-api when the remote serves it and falls back to kubelet.
import type { V1Pod } from '@kubernetes/client-node';
import { isNotFound } from '../kube/errors.ts';
import { parseQuantity } from '../kube/quantity.ts';
import type { RemoteCluster } from '../remotes/remote.ts';
import { parsePrometheusText, type Sample } from './prometheus.ts';

/** One container's usage, named as the host knows it. */
export interface ContainerUsage {
  readonly namespace: string;
  readonly pod: string;
  readonly podUid: string;
  readonly container: string;
  readonly cpuSeconds?: number;
  readonly memoryBytes?: number;
  /** Seconds since the epoch. */
  readonly startTime?: number;
  readonly timestampMs: number;
}

/** A remote sample keyed by the delegate it belongs to. */
export interface RawUsage {
  readonly delegate: V1Pod;
  readonly container: string;
  readonly cpuSeconds?: number;
  readonly memoryBytes?: number;
  readonly startTime?: number;
  readonly timestampMs?: number;
}

export type MetricsSourceKind = 'auto' | 'metrics-api' | 'kubelet';

interface PodMetrics {
  metadata: { name: string; namespace: string };
  timestamp: string;
  window: string;
  containers: { name: string; usage: { cpu?: string; memory?: string } }[];
}

const key = (delegate: V1Pod) => `${delegate.metadata?.namespace}/${delegate.metadata?.name}`;

/** "10.5s", "1m30s", "15s" → seconds. */
export function parseWindowSeconds(window: string): number {
  let seconds = 0;
  for (const [, value, unit] of window.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) {
    const factor = unit === 'h' ? 3600 : unit === 'm' ? 60 : unit === 'ms' ? 0.001 : 1;
    seconds += Number(value) * factor;
  }
  return seconds;
}

/**
 * Turns CPU rates observed at points in time into a cumulative counter per container: each new
 * observation adds its rate over the time since the previous one (the first adds its own window).
 */
export class CpuIntegrator {
  private readonly counters = new Map<string, { total: number; atMs: number }>();

  observe(id: string, cores: number, atMs: number, windowSeconds: number): number {
    const counter = this.counters.get(id);
    if (!counter) {
      const total = cores * windowSeconds;
      this.counters.set(id, { total, atMs });
      return total;
    }
    if (atMs > counter.atMs) {
      counter.total += (cores * (atMs - counter.atMs)) / 1000;
      counter.atMs = atMs;
    }
    return counter.total;
  }

  /** Forgets containers not in `live`, so the map does not grow with every pod that ever ran. */
  retain(live: ReadonlySet<string>): void {
    for (const id of this.counters.keys()) if (!live.has(id)) this.counters.delete(id);
  }
}

/** Usage from the remote's metrics.k8s.io API, for the given delegates. */
export async function fromMetricsApi(
  remote: RemoteCluster,
  delegates: readonly V1Pod[],
  cpu: CpuIntegrator,
): Promise<RawUsage[]> {
  const list = await remote.client.get<{ items: PodMetrics[] }>('/apis/metrics.k8s.io/v1beta1/pods', {
    query: { labelSelector: remote.pods.delegateSelector },
    attempts: 2,
    timeoutMs: 10_000,
  });
  const byKey = new Map(delegates.map((d) => [key(d), d]));
  const usage: RawUsage[] = [];
  for (const item of list.items ?? []) {
    const delegate = byKey.get(`${item.metadata.namespace}/${item.metadata.name}`);
    if (!delegate) continue;
    const timestampMs = Date.parse(item.timestamp);
    const windowSeconds = parseWindowSeconds(item.window ?? '');
    for (const container of item.containers ?? []) {
      const cores =
        container.usage.cpu === undefined ? undefined : Number(parseQuantity(container.usage.cpu)) / 1e9;
      const memory =
        container.usage.memory === undefined
          ? undefined
          : Number(parseQuantity(container.usage.memory) / 1_000_000_000n);
      usage.push({
        delegate,
        container: container.name,
        cpuSeconds:
          cores === undefined
            ? undefined
            : cpu.observe(`${delegate.metadata?.uid}/${container.name}`, cores, timestampMs, windowSeconds),
        memoryBytes: memory,
        timestampMs,
      });
    }
  }
  return usage;
}

/** Usage from each remote kubelet's /metrics/resource (through the remote API server's node proxy). */
export async function fromKubelets(
  delegates: readonly V1Pod[],
  scrape: (remoteNode: string) => Promise<Sample[]>,
  onError: (remoteNode: string, error: unknown) => void,
): Promise<RawUsage[]> {
  const byNode = new Map<string, V1Pod[]>();
  for (const delegate of delegates) {
    const node = delegate.spec?.nodeName;
    if (node) byNode.set(node, [...(byNode.get(node) ?? []), delegate]);
  }
  const usage: RawUsage[] = [];
  await Promise.all(
    [...byNode].map(async ([remoteNode, onNode]) => {
      let samples: Sample[];
      try {
        samples = await scrape(remoteNode);
      } catch (error) {
        onError(remoteNode, error);
        return;
      }
      const byKey = new Map(onNode.map((d) => [key(d), d]));
      const entries = new Map<string, { -readonly [K in keyof RawUsage]: RawUsage[K] }>();
      for (const sample of samples) {
        const { namespace, pod, container } = sample.labels;
        const delegate = byKey.get(`${namespace}/${pod}`);
        if (!delegate || !container) continue;
        const id = `${namespace}/${pod}/${container}`;
        const entry = entries.get(id) ?? { delegate, container, timestampMs: sample.timestampMs };
        if (sample.name === 'container_cpu_usage_seconds_total') entry.cpuSeconds = sample.value;
        else if (sample.name === 'container_memory_working_set_bytes') entry.memoryBytes = sample.value;
        else if (sample.name === 'container_start_time_seconds') entry.startTime = sample.value;
        entries.set(id, entry);
      }
      usage.push(...entries.values());
    }),
  );
  return usage;
}

/** Scrapes one remote kubelet's resource metrics (honouring kwok's per-node metrics path annotation). */
export async function scrapeKubelet(remote: RemoteCluster, remoteNode: string): Promise<Sample[]> {
  const path = remote.view.remoteNode(remoteNode)?.metricsPath ?? '/metrics/resource';
  const text = await remote.client.get<string>(`/api/v1/nodes/${remoteNode}/proxy${path}`, {
    attempts: 2,
    timeoutMs: 10_000,
  });
  return parsePrometheusText(String(text));
}

/** Whether the remote serves metrics.k8s.io (a 404 means no metrics-server is registered there). */
export async function servesMetricsApi(remote: RemoteCluster): Promise<boolean> {
  try {
    await remote.client.get('/apis/metrics.k8s.io/v1beta1', { attempts: 1, timeoutMs: 5_000 });
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}
