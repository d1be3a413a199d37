// Gauges read from the running remotes at scrape time (nothing is updated on the hot path): virtual
// node readiness, remote reachability, pods and delegates by phase, credential expiry, and this
// replica's share of the remotes when high availability is on.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { collectDefaultMetrics, Gauge } from 'prom-client';
import { credentialExpiry } from '../kube/token.ts';
import type { RemoteCluster } from '../remotes/remote.ts';
import { VERSION } from '../version.ts';
import { metricsRegistry } from './registry.ts';

export interface RemoteSource {
  /** The remotes this process runs (owns). */
  readonly remotes: () => readonly RemoteCluster[];
  /** High availability: whether this replica holds the leader Lease (shared work). */
  readonly leader?: () => boolean;
}

/** Every Spillway started in this process (tests start several); each scrape reads them all. */
const sources = new Set<RemoteSource>();

const PHASES = ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'] as const;

function phaseCounts(pods: readonly V1Pod[]): Map<string, number> {
  const counts = new Map<string, number>(PHASES.map((phase) => [phase, 0]));
  for (const pod of pods) {
    const phase = pod.status?.phase ?? 'Pending';
    counts.set(phase, (counts.get(phase) ?? 0) + 1);
  }
  return counts;
}

export function nodeReady(node: V1Node | undefined): boolean {
  return node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

function allRemotes(): RemoteCluster[] {
  return [...sources].flatMap((source) => source.remotes());
}

let declared = false;

function declare(): void {
  if (declared) return;
  declared = true;
  collectDefaultMetrics({ register: metricsRegistry, prefix: 'spillway_' });
  new Gauge({
    name: 'spillway_build_info',
    help: 'The running version of Spillway (always 1).',
    labelNames: ['version'],
    registers: [metricsRegistry],
    collect() {
      this.reset();
      this.labels(VERSION).set(1);
    },
  });
  new Gauge({
    name: 'spillway_virtual_node_ready',
    help: 'Whether a virtual node served by this process is Ready (1) or not (0).',
    labelNames: ['node', 'remote'],
    registers: [metricsRegistry],
    collect() {
      this.reset();
      for (const remote of allRemotes()) {
        this.labels(remote.spec.nodeName, remote.name).set(nodeReady(remote.node.current()) ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'spillway_remote_reachable',
    help: "Whether a remote cluster's API server answers Spillway's probes (1) or not (0, past the grace period).",
    labelNames: ['remote'],
    registers: [metricsRegistry],
    collect() {
      this.reset();
      for (const remote of allRemotes()) {
        this.labels(remote.name).set(remote.health.reachability().state === 'unreachable' ? 0 : 1);
      }
    },
  });
  new Gauge({
    name: 'spillway_delegates',
    help: 'Delegate pods in the remote cluster, by virtual node and phase.',
    labelNames: ['node', 'phase'],
    registers: [metricsRegistry],
    collect() {
      this.reset();
      for (const remote of allRemotes()) {
        for (const [phase, count] of phaseCounts(remote.pods.delegates.list())) {
          this.labels(remote.spec.nodeName, phase).set(count);
        }
      }
    },
  });
  new Gauge({
    name: 'spillway_host_pods',
    help: 'Host pods bound to a virtual node, by node and phase.',
    labelNames: ['node', 'phase'],
    registers: [metricsRegistry],
    collect() {
      this.reset();
      for (const remote of allRemotes()) {
        for (const [phase, count] of phaseCounts(remote.pods.hostPods.list())) {
          this.labels(remote.spec.nodeName, phase).set(count);
        }
      }
    },
  });
  new Gauge({
    name: 'spillway_remote_credential_expiry_timestamp_seconds',
    help: 'When the token Spillway uses for a remote cluster expires (Unix time); absent for credentials without an expiry.',
    labelNames: ['remote'],
    registers: [metricsRegistry],
    collect() {
      this.reset();
      for (const remote of allRemotes()) {
        const expiry = credentialExpiry(remote.client.kubeConfig);
        if (expiry) this.labels(remote.name).set(expiry.getTime() / 1000);
      }
    },
  });
  new Gauge({
    name: 'spillway_ha_owned_remotes',
    help: 'Remotes this replica owns (runs) right now.',
    registers: [metricsRegistry],
    collect() {
      this.set(allRemotes().length);
    },
  });
  new Gauge({
    name: 'spillway_ha_leader',
    help: 'Whether this replica does the shared work (webhook configuration, collection of stale Leases): 1 or 0.',
    registers: [metricsRegistry],
    collect() {
      this.set([...sources].some((source) => source.leader?.() ?? true) ? 1 : 0);
    },
  });
}

/** Adds a running Spillway to what scrapes report; the returned function removes it. */
export function reportRemotes(source: RemoteSource): () => void {
  declare();
  sources.add(source);
  return () => sources.delete(source);
}
