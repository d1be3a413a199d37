// Watches both clusters from their own watch streams and counts what must never happen:
//   duplicates     two live delegates for one host pod UID at any moment
//   regressions    a host pod seen Succeeded/Failed, later seen in another phase
//   at-most-one    two pods of one StatefulSet identity Running at once, across both clusters
//   NotReady flaps the virtual node's Ready condition going False (counted; expected under partitions)
//   lease age      the longest time the node's Lease went without renewal
// and says whether the two clusters agree (converged): every live host pod on the virtual node has
// its delegate in the same phase and readiness, and every delegate has its host pod.
import { CoreV1Api, KubeConfig, type V1Lease, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { deletionsOf } from './audit.ts';
import { ListWatcher } from './watcher.ts';

const HOST_UID = 'spillway.dev/host-pod-uid';
const HOST_NAMESPACE = 'spillway.dev/host-namespace';
const HOST_NAME = 'spillway.dev/host-name';

export interface ObserverOptions {
  readonly hostKubeconfig: string;
  readonly remoteKubeconfig: string;
  /** The remote API server's audit log of pod deletions: names who deleted a failed pod's delegate. */
  readonly remoteAuditLog?: string;
  readonly namespace: string;
  readonly nodeName: string;
}

export interface Counts {
  duplicates: number;
  regressions: number;
  atMostOne: number;
  notReadyFlaps: number;
  leaseMaxAgeSeconds: number;
  /** Host pods bound to the virtual node first seen since the reset. */
  mirrored: number;
}

const terminal = (phase: string | undefined) => phase === 'Succeeded' || phase === 'Failed';
const ready = (pod: V1Pod | undefined) => pod?.status?.conditions?.find((c) => c.type === 'Ready')?.status;
const running = (pod: V1Pod | undefined) => pod?.status?.phase === 'Running';

function kubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export class Observer {
  private readonly options: ObserverOptions;
  readonly host: ListWatcher<V1Pod>;
  readonly delegates: ListWatcher<V1Pod>;
  private readonly node: ListWatcher<V1Node>;
  private readonly lease: ListWatcher<V1Lease>;
  /** Host pod UID → live delegate keys. */
  private readonly liveDelegates = new Map<string, Set<string>>();
  private readonly terminalSeen = new Map<string, string>();
  private readonly statefulIdentities = new Set<string>();
  /** Every host pod UID ever seen on the virtual node, and how many of them are new since the reset. */
  private readonly everMirrored = new Set<string>();
  private newMirrored = 0;
  private readonly duplicateUids = new Set<string>();
  private readonly regressedUids = new Set<string>();
  private readonly atMostOneViolations: string[] = [];
  private readonly spillwayFailures = new Map<string, string>();
  /** Host pod UID → why the remote marked its delegate for disruption (its DisruptionTarget condition). */
  private readonly disruptions = new Map<string, string>();
  private readonly remoteEvents: CoreV1Api;
  private notReadyFlaps = 0;
  private lastReady: string | undefined;
  private lastRenew = 0;
  private leaseMaxAgeMs = 0;
  private leaseTimer: NodeJS.Timeout | undefined;

  constructor(options: ObserverOptions) {
    this.options = options;
    const hostConfig = kubeConfig(options.hostKubeconfig);
    const remoteConfig = kubeConfig(options.remoteKubeconfig);
    this.remoteEvents = remoteConfig.makeApiClient(CoreV1Api);
    this.host = new ListWatcher<V1Pod>(hostConfig, {
      path: `/api/v1/namespaces/${options.namespace}/pods`,
      onEvent: (type, pod, previous) => this.onHostPod(type, pod, previous),
    });
    this.delegates = new ListWatcher<V1Pod>(remoteConfig, {
      path: `/api/v1/namespaces/${options.namespace}/pods`,
      labelSelector: `spillway.dev/virtual-node=${options.nodeName}`,
      onEvent: (type, pod, previous) => this.onDelegate(type, pod, previous),
    });
    this.node = new ListWatcher<V1Node>(hostConfig, {
      path: '/api/v1/nodes',
      fieldSelector: `metadata.name=${options.nodeName}`,
      onEvent: (type, node) => {
        if (type === 'DELETED') return;
        const now = node.status?.conditions?.find((c) => c.type === 'Ready')?.status;
        if (this.lastReady === 'True' && now !== 'True') this.notReadyFlaps++;
        this.lastReady = now;
      },
    });
    this.lease = new ListWatcher<V1Lease>(hostConfig, {
      path: '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases',
      fieldSelector: `metadata.name=${options.nodeName}`,
      onEvent: (type, lease) => {
        const renewed = Date.parse(String(lease.spec?.renewTime ?? ''));
        if (type !== 'DELETED' && Number.isFinite(renewed))
          this.lastRenew = Math.max(this.lastRenew, renewed);
      },
    });
  }

  async start(): Promise<void> {
    await Promise.all([this.host.start(), this.delegates.start(), this.node.start(), this.lease.start()]);
    this.leaseTimer = setInterval(() => {
      if (this.lastRenew > 0) this.leaseMaxAgeMs = Math.max(this.leaseMaxAgeMs, Date.now() - this.lastRenew);
    }, 250);
    this.leaseTimer.unref();
  }

  stop(): void {
    clearInterval(this.leaseTimer);
    for (const watcher of [this.host, this.delegates, this.node, this.lease]) watcher.stop();
  }

  nodeReady(): boolean {
    return this.lastReady === 'True';
  }

  /** Host pods on the virtual node being deleted now. */
  terminatingPods(): number {
    let count = 0;
    for (const pod of this.host.objects.values()) {
      const deleting = (pod.metadata as { deletionTimestamp?: unknown }).deletionTimestamp;
      if (pod.spec?.nodeName === this.options.nodeName && deleting) count++;
    }
    return count;
  }

  /** Host pods on the virtual node that are neither finished nor being deleted. */
  livePods(): number {
    let live = 0;
    for (const pod of this.host.objects.values()) {
      const deleting = (pod.metadata as { deletionTimestamp?: unknown }).deletionTimestamp;
      if (pod.spec?.nodeName === this.options.nodeName && !deleting && !terminal(pod.status?.phase)) live++;
    }
    return live;
  }

  /** Counters since the last reset (per scenario). */
  counts(): Counts {
    return {
      duplicates: this.duplicateUids.size,
      regressions: this.regressedUids.size,
      atMostOne: this.atMostOneViolations.length,
      notReadyFlaps: this.notReadyFlaps,
      leaseMaxAgeSeconds: Math.round(this.leaseMaxAgeMs / 100) / 10,
      mirrored: this.newMirrored,
    };
  }

  details(): { duplicates: string[]; regressions: string[]; atMostOne: string[] } {
    return {
      duplicates: [...this.duplicateUids],
      regressions: [...this.regressedUids],
      atMostOne: [...this.atMostOneViolations],
    };
  }

  reset(): void {
    this.duplicateUids.clear();
    this.regressedUids.clear();
    this.atMostOneViolations.length = 0;
    this.spillwayFailures.clear();
    this.newMirrored = 0;
    this.notReadyFlaps = 0;
    this.leaseMaxAgeMs = 0;
  }

  private onHostPod(type: string, pod: V1Pod, previous: V1Pod | undefined): void {
    const uid = pod.metadata?.uid ?? '';
    if (type === 'DELETED') {
      this.terminalSeen.delete(uid);
    } else {
      const phase = pod.status?.phase;
      const seen = this.terminalSeen.get(uid);
      if (seen && phase !== seen)
        this.regressedUids.add(`${pod.metadata?.namespace}/${pod.metadata?.name} ${seen}→${phase}`);
      if (terminal(phase) && !seen) this.terminalSeen.set(uid, phase as string);
      if (pod.spec?.nodeName === this.options.nodeName && !this.everMirrored.has(uid)) {
        this.everMirrored.add(uid);
        this.newMirrored++;
      }
      const delegated = pod.status?.conditions?.find((c) => c.type === 'spillway.dev/Delegated');
      // Failed by Spillway itself (its condition says why): faults must never cause one.
      if (phase === 'Failed' && delegated?.status === 'False' && !this.spillwayFailures.has(uid)) {
        this.spillwayFailures.set(uid, `${pod.metadata?.name}: ${delegated.reason}`);
        void this.explain(uid, pod);
      }
    }
    if (pod.metadata?.ownerReferences?.some((o) => o.kind === 'StatefulSet' && o.controller)) {
      this.statefulIdentities.add(identityOf(pod));
    }
    if (previous?.metadata?.uid !== uid || running(previous) !== running(pod) || type === 'DELETED') {
      this.checkIdentity(identityOf(pod));
    }
  }

  private onDelegate(type: string, delegate: V1Pod, previous: V1Pod | undefined): void {
    const hostUid = delegate.metadata?.labels?.[HOST_UID] ?? '';
    const key = `${delegate.metadata?.namespace}/${delegate.metadata?.name}/${delegate.metadata?.uid}`;
    const live =
      type !== 'DELETED' && !(delegate.metadata as { deletionTimestamp?: unknown })?.deletionTimestamp;
    const set = this.liveDelegates.get(hostUid) ?? new Set<string>();
    if (live) set.add(key);
    else set.delete(key);
    if (set.size > 0) this.liveDelegates.set(hostUid, set);
    else this.liveDelegates.delete(hostUid);
    if (set.size > 1) this.duplicateUids.add(hostUid);
    const disruption = delegate.status?.conditions?.find((c) => c.type === 'DisruptionTarget');
    if (disruption?.status === 'True')
      this.disruptions.set(hostUid, `${disruption.reason}: ${disruption.message}`);
    if (type === 'DELETED' || running(previous) !== running(delegate) || !previous) {
      const namespace = delegate.metadata?.annotations?.[HOST_NAMESPACE];
      const name = delegate.metadata?.annotations?.[HOST_NAME];
      if (namespace && name) this.checkIdentity(`${namespace}/${name}`);
    }
  }

  /** How many instances of a StatefulSet identity run now, across both clusters. */
  private checkIdentity(identity: string): void {
    if (!this.statefulIdentities.has(identity)) return;
    const [namespace, name] = identity.split('/');
    let count = 0;
    const host = this.host.objects.get(`${namespace}/${name}`);
    // A host pod on the virtual node is its delegate, counted on the remote side.
    if (host && running(host) && host.spec?.nodeName !== this.options.nodeName) count++;
    for (const delegate of this.delegates.objects.values()) {
      const annotations = delegate.metadata?.annotations;
      if (
        annotations?.[HOST_NAMESPACE] === namespace &&
        annotations?.[HOST_NAME] === name &&
        running(delegate)
      )
        count++;
    }
    if (count > 1) this.atMostOneViolations.push(`${identity} ×${count} at ${new Date().toISOString()}`);
  }

  /** Why the two clusters do not agree yet (empty: converged). */
  disagreements(): string[] {
    const problems: string[] = [];
    const byHostUid = new Map<string, V1Pod>();
    for (const delegate of this.delegates.objects.values()) {
      byHostUid.set(delegate.metadata?.labels?.[HOST_UID] ?? '', delegate);
    }
    const hostUids = new Set<string>();
    for (const pod of this.host.objects.values()) {
      if (pod.spec?.nodeName !== this.options.nodeName) continue;
      const uid = pod.metadata?.uid ?? '';
      hostUids.add(uid);
      const name = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
      const delegate = byHostUid.get(uid);
      if ((pod.metadata as { deletionTimestamp?: unknown }).deletionTimestamp) {
        problems.push(`${name}: host pod still Terminating`);
        continue;
      }
      if (terminal(pod.status?.phase)) {
        if (delegate && !terminal(delegate.status?.phase))
          problems.push(`${name}: finished, delegate still running`);
        continue;
      }
      if (!delegate) problems.push(`${name}: no delegate`);
      else if (delegate.status?.phase !== pod.status?.phase) {
        problems.push(`${name}: host ${pod.status?.phase}, delegate ${delegate.status?.phase}`);
      } else if (ready(delegate) !== ready(pod)) problems.push(`${name}: readiness differs`);
    }
    for (const [uid, delegate] of byHostUid) {
      if (!hostUids.has(uid)) problems.push(`${delegate.metadata?.name}: orphan delegate`);
    }
    return problems;
  }

  /** Host pods failed by Spillway since the last reset, with what the remote said about their delegate. */
  failedBySpillway(): string[] {
    return [...this.spillwayFailures.values()];
  }

  /**
   * Adds what the remote says about the delegate: its events, its DisruptionTarget condition (an
   * eviction by the remote's taint manager, preemption, pod GC) and who deleted it (the audit log).
   */
  private async explain(uid: string, pod: V1Pod): Promise<void> {
    const namespace = pod.metadata?.namespace ?? '';
    const name = pod.metadata?.name ?? '';
    const events = await this.remoteEvents
      .listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` })
      .catch(() => undefined);
    const said = [...new Set(events?.items.map((e) => `${e.reason}: ${e.message}`) ?? [])].slice(-4);
    const since = new Date(pod.metadata?.creationTimestamp ?? 0).toISOString();
    const audit = this.options.remoteAuditLog
      ? (await deletionsOf(this.options.remoteAuditLog, namespace, name)).filter((d) => d >= since)
      : [];
    const disruption = this.disruptions.get(uid);
    const parts = [
      ...(said.length ? [`remote events: ${said.join(' | ')}`] : []),
      ...(disruption ? [`delegate disruption: ${disruption}`] : []),
      ...(audit.length ? [`remote audit: ${audit.join(' | ')}`] : []),
    ];
    const failure = this.spillwayFailures.get(uid);
    if (failure && parts.length) this.spillwayFailures.set(uid, `${failure} (${parts.join('; ')})`);
  }
}

function identityOf(pod: V1Pod): string {
  return `${pod.metadata?.namespace}/${pod.metadata?.name}`;
}
