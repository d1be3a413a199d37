// Resource metrics of a virtual node and its pods, as metrics-server scrapes a kubelet
// (/metrics/resource) and as /stats/summary reports them, sourced from the remote cluster's own
// kubelets through its API server (nodes/<node>/proxy). Container series are relabelled to the host
// pods; node usage is what the virtual node runs: the sum over its pods (CPU as a counter that never
// goes back, even when pods leave).
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { messageOf } from '../kube/errors.ts';
import { ANNOTATION_HOST_NAME, ANNOTATION_HOST_NAMESPACE } from '../pods/forge.ts';
import type { RemoteCluster } from '../remotes/remote.ts';
import { type Family, formatPrometheusText, parsePrometheusText, type Sample } from './prometheus.ts';

interface ContainerUsage {
  readonly namespace: string;
  readonly pod: string;
  readonly podUid: string;
  readonly container: string;
  readonly cpuSeconds?: number;
  readonly memoryBytes?: number;
  readonly startTime?: number;
  readonly timestampMs: number;
}

export interface NodeUsage {
  readonly nodeName: string;
  readonly timestampMs: number;
  readonly cpuSeconds: number;
  readonly memoryBytes: number;
  readonly containers: readonly ContainerUsage[];
  readonly scrapeErrors: number;
}

const CACHE_MS = 5_000;

export class ResourceMetrics {
  private readonly logger: Logger;
  private readonly scrapes = new Map<string, { at: number; result: Promise<Sample[]> }>();
  /** Per virtual node: the CPU counter and each container's last cumulative value. */
  private readonly cpu = new Map<string, { total: number; last: Map<string, number> }>();
  private readonly startedAt = Date.now();

  constructor(logger: Logger) {
    this.logger = logger;
  }

  /** The remote kubelet's resource metrics for one remote node, cached briefly and shared by concurrent scrapes. */
  private scrape(remote: RemoteCluster, remoteNode: string): Promise<Sample[]> {
    const key = `${remote.name}/${remoteNode}`;
    const cached = this.scrapes.get(key);
    if (cached && Date.now() - cached.at < CACHE_MS) return cached.result;
    const path = remote.view.nodes.get(remoteNode)?.metricsPath ?? '/metrics/resource';
    const result = remote.client
      .get<string>(`/api/v1/nodes/${remoteNode}/proxy${path}`, { attempts: 2, timeoutMs: 10_000 })
      .then((text) => parsePrometheusText(String(text)));
    this.scrapes.set(key, { at: Date.now(), result });
    result.catch(() => this.scrapes.delete(key));
    return result;
  }

  async collect(remote: RemoteCluster): Promise<NodeUsage> {
    const now = Date.now();
    const byRemoteNode = new Map<string, V1Pod[]>();
    for (const delegate of remote.pods.delegates.list()) {
      const node = delegate.spec?.nodeName;
      if (!node || delegate.status?.phase !== 'Running') continue;
      byRemoteNode.set(node, [...(byRemoteNode.get(node) ?? []), delegate]);
    }
    const containers: ContainerUsage[] = [];
    let scrapeErrors = 0;
    await Promise.all(
      [...byRemoteNode].map(async ([remoteNode, delegates]) => {
        let samples: Sample[];
        try {
          samples = await this.scrape(remote, remoteNode);
        } catch (error) {
          scrapeErrors++;
          this.logger.info(
            { remote: remote.name, node: remoteNode, err: messageOf(error) },
            'scraping remote kubelet metrics failed',
          );
          return;
        }
        const delegatesByKey = new Map(
          delegates.map((d) => [`${d.metadata?.namespace}/${d.metadata?.name}`, d]),
        );
        const usage = new Map<string, ContainerUsage>();
        for (const sample of samples) {
          const { namespace, pod, container } = sample.labels;
          if (!namespace || !pod || !container) continue;
          const delegate = delegatesByKey.get(`${namespace}/${pod}`);
          if (!delegate) continue;
          const key = `${namespace}/${pod}/${container}`;
          const entry: ContainerUsage = usage.get(key) ?? {
            namespace: delegate.metadata?.annotations?.[ANNOTATION_HOST_NAMESPACE] ?? namespace,
            pod: delegate.metadata?.annotations?.[ANNOTATION_HOST_NAME] ?? pod,
            podUid: delegate.metadata?.labels?.['spillway.dev/host-pod-uid'] ?? '',
            container,
            timestampMs: sample.timestampMs ?? now,
          };
          if (sample.name === 'container_cpu_usage_seconds_total')
            usage.set(key, { ...entry, cpuSeconds: sample.value });
          else if (sample.name === 'container_memory_working_set_bytes')
            usage.set(key, { ...entry, memoryBytes: sample.value });
          else if (sample.name === 'container_start_time_seconds')
            usage.set(key, { ...entry, startTime: sample.value });
        }
        containers.push(...usage.values());
      }),
    );
    return {
      nodeName: remote.spec.nodeName,
      timestampMs: now,
      cpuSeconds: this.accumulate(remote.spec.nodeName, containers),
      memoryBytes: containers.reduce((sum, c) => sum + (c.memoryBytes ?? 0), 0),
      containers,
      scrapeErrors,
    };
  }

  /** Adds each container's growth since the last collection; containers that left take nothing back. */
  private accumulate(nodeName: string, containers: readonly ContainerUsage[]): number {
    const state = this.cpu.get(nodeName) ?? { total: 0, last: new Map<string, number>() };
    const seen = new Map<string, number>();
    for (const c of containers) {
      if (c.cpuSeconds === undefined) continue;
      const key = `${c.podUid}/${c.container}`;
      state.total += Math.max(0, c.cpuSeconds - (state.last.get(key) ?? 0));
      seen.set(key, c.cpuSeconds);
    }
    state.last = seen;
    this.cpu.set(nodeName, state);
    return state.total;
  }

  async resourceMetricsText(remote: RemoteCluster): Promise<string> {
    const usage = await this.collect(remote);
    const containerSample = (c: ContainerUsage, value: number | undefined): Sample[] =>
      value === undefined
        ? []
        : [
            {
              name: '',
              labels: { container: c.container, namespace: c.namespace, pod: c.pod },
              value,
              timestampMs: c.timestampMs,
            },
          ];
    const families: Family[] = [
      {
        name: 'container_cpu_usage_seconds_total',
        help: '[STABLE] Cumulative cpu time consumed by the container in core-seconds',
        type: 'counter',
        samples: usage.containers.flatMap((c) => containerSample(c, c.cpuSeconds)),
      },
      {
        name: 'container_memory_working_set_bytes',
        help: '[STABLE] Current working set of the container in bytes',
        type: 'gauge',
        samples: usage.containers.flatMap((c) => containerSample(c, c.memoryBytes)),
      },
      {
        name: 'container_start_time_seconds',
        help: '[STABLE] Start time of the container since unix epoch in seconds',
        type: 'gauge',
        samples: usage.containers.flatMap((c) => containerSample(c, c.startTime)),
      },
      {
        name: 'node_cpu_usage_seconds_total',
        help: '[STABLE] Cumulative cpu time consumed by the node in core-seconds',
        type: 'counter',
        samples: [{ name: '', labels: {}, value: usage.cpuSeconds, timestampMs: usage.timestampMs }],
      },
      {
        name: 'node_memory_working_set_bytes',
        help: '[STABLE] Current working set of the node in bytes',
        type: 'gauge',
        samples: [{ name: '', labels: {}, value: usage.memoryBytes, timestampMs: usage.timestampMs }],
      },
      {
        name: 'resource_scrape_error',
        help: '[STABLE] 1 if there was an error while getting container metrics, 0 otherwise',
        type: 'gauge',
        samples: [{ name: '', labels: {}, value: usage.scrapeErrors > 0 ? 1 : 0 }],
      },
    ];
    return formatPrometheusText(families);
  }

  /** The kubelet's /stats/summary shape (statsv1alpha1.Summary), CPU and memory only. */
  async summary(remote: RemoteCluster): Promise<Record<string, unknown>> {
    const usage = await this.collect(remote);
    const time = (ms: number) => new Date(ms).toISOString();
    const cpu = (seconds: number | undefined, at: number) =>
      seconds === undefined ? undefined : { time: time(at), usageCoreNanoSeconds: Math.round(seconds * 1e9) };
    const memory = (bytes: number | undefined, at: number) =>
      bytes === undefined ? undefined : { time: time(at), workingSetBytes: Math.round(bytes) };
    const pods = new Map<string, ContainerUsage[]>();
    for (const c of usage.containers)
      pods.set(`${c.namespace}/${c.pod}`, [...(pods.get(`${c.namespace}/${c.pod}`) ?? []), c]);
    return {
      node: {
        nodeName: usage.nodeName,
        startTime: time(this.startedAt),
        cpu: cpu(usage.cpuSeconds, usage.timestampMs),
        memory: memory(usage.memoryBytes, usage.timestampMs),
      },
      pods: [...pods.values()].map((containers) => {
        const first = containers[0] as ContainerUsage;
        const started = Math.min(...containers.map((c) => c.startTime ?? Number.POSITIVE_INFINITY));
        return {
          podRef: { name: first.pod, namespace: first.namespace, uid: first.podUid },
          ...(Number.isFinite(started) ? { startTime: time(started * 1000) } : {}),
          containers: containers.map((c) => ({
            name: c.container,
            ...(c.startTime ? { startTime: time(c.startTime * 1000) } : {}),
            cpu: cpu(c.cpuSeconds, c.timestampMs),
            memory: memory(c.memoryBytes, c.timestampMs),
          })),
          cpu: cpu(
            containers.reduce((s, c) => s + (c.cpuSeconds ?? 0), 0),
            first.timestampMs,
          ),
          memory: memory(
            containers.reduce((s, c) => s + (c.memoryBytes ?? 0), 0),
            first.timestampMs,
          ),
        };
      }),
    };
  }
}
