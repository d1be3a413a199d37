// Resource metrics of a virtual node and its pods, as metrics-server scrapes a kubelet
// (/metrics/resource) and as /stats/summary reports them. Usage comes from the remote cluster (see
// metrics-sources.ts), is renamed to the host pods, and node usage is what the virtual node runs: the
// sum over its pods, with CPU as a counter that never goes back, even when pods leave.
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { isNotFound, messageOf } from '../kube/errors.ts';
import { LABEL_HOST_POD_UID } from '../ownership.ts';
import { ANNOTATION_HOST_NAME, ANNOTATION_HOST_NAMESPACE } from '../pods/forge.ts';
import type { RemoteCluster } from '../remotes/remote.ts';
import {
  type ContainerUsage,
  CpuIntegrator,
  fromKubelets,
  fromMetricsApi,
  type MetricsSourceKind,
  type RawUsage,
  scrapeKubelet,
  servesMetricsApi,
} from './metrics-sources.ts';
import { type Family, formatPrometheusText, type Sample } from './prometheus.ts';

export interface NodeUsage {
  readonly nodeName: string;
  readonly timestampMs: number;
  readonly cpuSeconds: number;
  readonly memoryBytes: number;
  readonly containers: readonly ContainerUsage[];
  readonly source: 'metrics-api' | 'kubelet' | 'none';
  readonly scrapeErrors: number;
}

/** Concurrent and back-to-back scrapes (metrics-server, /stats/summary, people) share one collection. */
const COLLECTION_CACHE_MS = 5_000;
/** How long `auto` trusts its finding about whether a remote serves metrics.k8s.io. */
const SOURCE_DECISION_MS = 5 * 60_000;

interface PerRemote {
  collection?: { at: number; result: Promise<NodeUsage> };
  decision?: { at: number; kind: 'metrics-api' | 'kubelet' };
  readonly integrator: CpuIntegrator;
  /** The node's CPU counter and each container's last cumulative value. */
  nodeCpu: { total: number; last: Map<string, number> };
}

/** When a delegate's container started, from its status (what a kubelet reports). */
function containerStartTime(delegate: V1Pod, container: string): number | undefined {
  const status = delegate.status?.containerStatuses?.find((s) => s.name === container);
  const started = status?.state?.running?.startedAt;
  return started ? new Date(started).getTime() / 1000 : undefined;
}

/** A remote sample, renamed to the host pod it stands for. */
export function toHostUsage(raw: RawUsage, nowMs: number): ContainerUsage {
  const meta = raw.delegate.metadata;
  return {
    namespace: meta?.annotations?.[ANNOTATION_HOST_NAMESPACE] ?? meta?.namespace ?? '',
    pod: meta?.annotations?.[ANNOTATION_HOST_NAME] ?? meta?.name ?? '',
    podUid: meta?.labels?.[LABEL_HOST_POD_UID] ?? '',
    container: raw.container,
    cpuSeconds: raw.cpuSeconds,
    memoryBytes: raw.memoryBytes,
    startTime: containerStartTime(raw.delegate, raw.container) ?? raw.startTime,
    timestampMs: raw.timestampMs ?? nowMs,
  };
}

/**
 * Adds each container's growth since the last collection to the node's counter; containers that
 * left take nothing back, and a counter that went back is a restarted container (all new time).
 */
export function accumulateCpu(
  state: { total: number; last: Map<string, number> },
  containers: readonly ContainerUsage[],
): { total: number; last: Map<string, number> } {
  let total = state.total;
  const last = new Map<string, number>();
  for (const c of containers) {
    if (c.cpuSeconds === undefined) continue;
    const id = `${c.podUid}/${c.container}`;
    const previous = state.last.get(id);
    total += previous === undefined || c.cpuSeconds < previous ? c.cpuSeconds : c.cpuSeconds - previous;
    last.set(id, c.cpuSeconds);
  }
  return { total, last };
}

export interface ResourceMetricsOptions {
  readonly source: MetricsSourceKind;
  readonly logger: Logger;
}

export class ResourceMetrics {
  private readonly source: MetricsSourceKind;
  private readonly logger: Logger;
  /** Keyed by the remote object, so a removed remote's state goes with it. */
  private readonly remotes = new WeakMap<RemoteCluster, PerRemote>();
  private readonly scrapes = new Map<string, { at: number; result: Promise<Sample[]> }>();
  private readonly startedAt = Date.now();

  constructor(options: ResourceMetricsOptions) {
    if (!['auto', 'metrics-api', 'kubelet'].includes(options.source))
      throw new Error(`resource metrics: unknown source ${String(options.source)}`);
    this.source = options.source;
    this.logger = options.logger;
  }

  private state(remote: RemoteCluster): PerRemote {
    let state = this.remotes.get(remote);
    if (!state) {
      state = { integrator: new CpuIntegrator(), nodeCpu: { total: 0, last: new Map() } };
      this.remotes.set(remote, state);
    }
    return state;
  }

  /** The node's usage now, shared by every scrape within a few seconds. */
  collect(remote: RemoteCluster): Promise<NodeUsage> {
    const state = this.state(remote);
    if (state.collection && Date.now() - state.collection.at < COLLECTION_CACHE_MS)
      return state.collection.result;
    const result = this.collectNow(remote, state);
    state.collection = { at: Date.now(), result };
    return result;
  }

  private async sourceFor(remote: RemoteCluster, state: PerRemote): Promise<'metrics-api' | 'kubelet'> {
    if (this.source !== 'auto') return this.source;
    if (state.decision && Date.now() - state.decision.at < SOURCE_DECISION_MS) return state.decision.kind;
    const kind = (await servesMetricsApi(remote)) ? 'metrics-api' : 'kubelet';
    if (state.decision?.kind !== kind)
      this.logger.info({ remote: remote.name, source: kind }, 'resource metrics source chosen');
    state.decision = { at: Date.now(), kind };
    return kind;
  }

  private async collectNow(remote: RemoteCluster, state: PerRemote): Promise<NodeUsage> {
    const now = Date.now();
    const delegates = remote.pods.delegates.list().filter((d) => d.status?.phase === 'Running');
    let raw: RawUsage[] = [];
    let scrapeErrors = 0;
    let source: NodeUsage['source'] = 'none';
    if (delegates.length > 0) {
      try {
        source = await this.sourceFor(remote, state);
        raw =
          source === 'metrics-api'
            ? await fromMetricsApi(remote, delegates, state.integrator)
            : await fromKubelets(
                delegates,
                (node) => this.scrape(remote, node),
                (node, error) => {
                  scrapeErrors++;
                  this.logger.info(
                    { remote: remote.name, remoteNode: node, err: messageOf(error) },
                    'scraping remote kubelet metrics failed',
                  );
                },
              );
      } catch (error) {
        scrapeErrors++;
        // metrics.k8s.io went away: let `auto` look again next time.
        if (isNotFound(error)) state.decision = undefined;
        this.logger.info(
          { remote: remote.name, source, err: messageOf(error) },
          'collecting resource metrics failed',
        );
      }
    }
    state.integrator.retain(
      new Set(
        delegates.flatMap((d) => (d.spec?.containers ?? []).map((c) => `${d.metadata?.uid}/${c.name}`)),
      ),
    );
    const containers = raw.map((r) => toHostUsage(r, now));
    state.nodeCpu = accumulateCpu(state.nodeCpu, containers);
    return {
      nodeName: remote.spec.nodeName,
      timestampMs: now,
      cpuSeconds: state.nodeCpu.total,
      memoryBytes: containers.reduce((sum, c) => sum + (c.memoryBytes ?? 0), 0),
      containers,
      source,
      scrapeErrors,
    };
  }

  /** One remote kubelet's resource metrics, shared by concurrent scrapes for a few seconds. */
  private scrape(remote: RemoteCluster, remoteNode: string): Promise<Sample[]> {
    const key = `${remote.name}/${remoteNode}`;
    const cached = this.scrapes.get(key);
    if (cached && Date.now() - cached.at < COLLECTION_CACHE_MS) return cached.result;
    for (const [stale, entry] of this.scrapes)
      if (Date.now() - entry.at >= COLLECTION_CACHE_MS) this.scrapes.delete(stale);
    const result = scrapeKubelet(remote, remoteNode);
    this.scrapes.set(key, { at: Date.now(), result });
    result.catch(() => this.scrapes.delete(key));
    return result;
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
