// Pod mirroring for one virtual node: host pods bound to the node and their delegates in the remote
// cluster feed one keyed work queue (the key is always the host pod's namespace/name, whichever side
// changed), so one pod is never reconciled twice at once and both sides are seen together. A
// reconcile gathers facts from the caches, asks plan() what to do and has the executor do it.
import type { V1Pod, V1PriorityClass, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Config, PodsConfig } from '../config.ts';
import type { ClusterClient } from '../kube/client.ts';
import type { EventRecorder } from '../kube/events.ts';
import { Informer, type KubeObject, keyOf } from '../kube/informer.ts';
import type { ResourceList } from '../kube/quantity.ts';
import { NamespaceMapper } from '../namespaces/mapper.ts';
import type { RemoteReachability } from '../node/conditions.ts';
import type { FitRefusal } from '../node/fragmentation.ts';
import { LABEL_HOST_POD_UID, LABEL_VIRTUAL_NODE, ownedSelector } from '../ownership.ts';
import type { ReconcileResult } from '../queue/workqueue.ts';
import { WorkQueue } from '../queue/workqueue.ts';
import { ServiceReflector } from '../services/reflector.ts';
import { VolumeProvisioner } from '../storage/provisioner.ts';
import type { WorkloadCaches } from '../workloads.ts';
import { admissionRefusal } from './admission.ts';
import { PodExecutor } from './execute.ts';
import { WorkloadExecutor } from './execute-workload.ts';
import {
  ANNOTATION_HOST_NAME,
  ANNOTATION_HOST_NAMESPACE,
  delegatePod,
  delegateReferences,
  type ForgeContext,
} from './forge.ts';
import { HostKeyIndex, hostKeyOfObject } from './host-key-index.ts';
import type { HostObjects } from './host-objects.ts';
import { PodMemory } from './memory.ts';
import { RemoteNamespaces } from './namespaces.ts';
import { type PodFacts, type PodPolicy, plan } from './plan.ts';
import type { PodSecretFacts } from './plan-workload.ts';
import { LABEL_POD_SECRET, trimPodSecret, viewOf } from './pod-secret.ts';
import { Reflector } from './reflect.ts';
import { RemoteEventMirror } from './remote-events.ts';
import { isTerminal } from './status.ts';
import { parseExternalServer, type TokenMode, type TokenPolicy, tokenChoice } from './tokens.ts';
import { trimDelegate, trimHostPod } from './trim.ts';
import { podSecretSpec } from './workload.ts';
import { WorkloadMemory } from './workload-memory.ts';

export interface PodControllerOptions {
  readonly host: ClusterClient;
  readonly remote: ClusterClient;
  readonly events: EventRecorder;
  /** The host's ConfigMaps and Secrets, shared by every remote of this host client. */
  readonly hostObjects: HostObjects;
  /** The host's Namespaces and the other shared caches of workloads. */
  readonly workloads: WorkloadCaches;
  /** The sections workloads read (host.externalServer, namespaces, services, storage). */
  readonly config: Pick<Config, 'host' | 'namespaces' | 'services' | 'storage'>;
  readonly hostClusterName: string;
  readonly remoteName: string;
  readonly nodeName: string;
  readonly kubeletAddress: string;
  readonly pods: PodsConfig;
  readonly virtualOnlyLabelKeys: ReadonlySet<string>;
  readonly virtualTaintKeys: ReadonlySet<string>;
  /** Whether some remote node can take a pod's requests (see FragmentationGuard). */
  readonly fit: (requests: ResourceList) => FitRefusal | undefined;
  /** Resolves once the virtual node has published capacity capped for a refusal (bounded wait). */
  readonly capacityRefused: () => Promise<void>;
  /** Whether the remote API server answers (from the health probe). */
  readonly reachability: () => RemoteReachability['state'];
  /** Whether the virtual node carries node.kubernetes.io/out-of-service. */
  readonly nodeOutOfService: () => boolean;
  readonly logger: Logger;
}

export interface DelegateRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string | undefined;
}

/** Rounds of plan → execute in one reconcile when the remote's answers call for a new decision. */
const MAX_ROUNDS = 3;

export class PodController {
  readonly hostPods: Informer<V1Pod>;
  readonly delegates: Informer<V1Pod>;
  /** Selects this node's delegates in the remote cluster (and nothing another host or node owns). */
  readonly delegateSelector: string;
  readonly queue: WorkQueue;
  readonly executor: PodExecutor;
  readonly reflector: Reflector;
  readonly memory = new PodMemory();
  /** The pods' own Secrets in the remote (host tokens, downward files), metadata only. */
  readonly podSecrets: Informer<V1Secret>;
  readonly namespaces: NamespaceMapper;
  /** Services of the namespaces with pods here, reflected into their remote namespaces. */
  readonly services: ServiceReflector;
  /** Claims of pods on this node, provisioned in the remote. */
  readonly storage: VolumeProvisioner;
  private readonly workloadMemory = new WorkloadMemory();
  private readonly delegatesByHost: HostKeyIndex<V1Pod>;
  private readonly podSecretsByHost: HostKeyIndex<V1Secret>;
  private readonly tokenPolicy: TokenPolicy;
  /** Delegates forged so far (a no-op reconcile forges none). */
  forges = 0;
  private readonly options: PodControllerOptions;
  private readonly priorityClasses: Informer<V1PriorityClass, KubeObject>;
  private readonly eventMirror: RemoteEventMirror;
  private readonly forgeContext: ForgeContext;
  private readonly policy: { -readonly [K in keyof PodPolicy]: PodPolicy[K] };
  private mode: 'run' | 'drain' = 'run';
  private resyncTimer: NodeJS.Timeout | undefined;

  constructor(options: PodControllerOptions) {
    this.options = options;
    const { host, remote, logger, nodeName, hostClusterName, pods } = options;
    this.hostPods = new Informer<V1Pod>({
      name: `host/pods/${nodeName}`,
      client: host,
      path: '/api/v1/pods',
      fieldSelector: `spec.nodeName=${nodeName}`,
      transform: trimHostPod,
      logger,
      // The host API server came back (restarted, compacted): every pod now, not after its back-off.
      onRelisted: () => this.requeueAll(),
    });
    this.delegateSelector = `${ownedSelector(hostClusterName)},${LABEL_VIRTUAL_NODE}=${nodeName}`;
    this.delegates = new Informer<V1Pod>({
      name: `${remote.name}/delegates/${nodeName}`,
      client: remote,
      path: '/api/v1/pods',
      labelSelector: this.delegateSelector,
      transform: trimDelegate,
      logger,
      onRelisted: () => this.requeueAll(),
    });
    this.podSecrets = new Informer<V1Secret>({
      name: `${remote.name}/pod-secrets/${nodeName}`,
      client: remote,
      path: '/api/v1/secrets',
      labelSelector: `${this.delegateSelector},${LABEL_POD_SECRET}`,
      transform: trimPodSecret,
      logger,
    });
    this.delegatesByHost = new HostKeyIndex(this.delegates);
    this.podSecretsByHost = new HostKeyIndex(this.podSecrets);
    const accounts = pods.serviceAccounts;
    const externalServer = parseExternalServer(options.config.host.externalServer);
    this.tokenPolicy = {
      defaultMode: accounts.default === 'auto' ? (externalServer ? 'host' : 'none') : accounts.default,
      externalServer,
      allowRemote: accounts.allowRemote,
      maxTokenAgeMs: accounts.maxTokenAgeSeconds * 1000,
    };
    this.namespaces = new NamespaceMapper({
      namespaces: options.workloads.namespaces,
      policy: {
        prefix: pods.namespacePrefix,
        annotations: options.config.namespaces.mappingAnnotations,
        reserved: new Set(options.config.namespaces.reserved),
      },
      remoteName: options.remoteName,
      nodeName,
      inUse: (hostNamespace) => this.delegatesByHost.namespacesOf(hostNamespace),
      events: options.events,
      onChange: (hostNamespaces) => this.requeueNamespaces(hostNamespaces),
    });
    this.delegatesByHost.onNamespacesChanged = (hostNamespace) => this.namespaces.changed([hostNamespace]);
    this.priorityClasses = new Informer<V1PriorityClass, KubeObject>({
      name: `${remote.name}/priorityclasses/${nodeName}`,
      client: remote,
      path: '/apis/scheduling.k8s.io/v1/priorityclasses',
      transform: (pc) => ({
        metadata: { name: pc.metadata?.name, resourceVersion: pc.metadata?.resourceVersion },
      }),
      logger,
    });
    this.queue = new WorkQueue({
      name: `pods/${nodeName}`,
      workers: pods.workers,
      logger,
      reconcile: (key) => this.reconcile(key),
    });
    const namespaces = new RemoteNamespaces(remote);
    this.reflector = new Reflector({
      remote,
      hostObjects: options.hostObjects,
      namespaces,
      hostClusterName,
      nodeName,
      namespacePrefix: pods.namespacePrefix,
      remoteNamespace: (hostNamespace) => this.namespaces.remoteNamespace(hostNamespace),
      referencesOf: (pod) => delegateReferences(pod.spec, this.tokenModeOf(pod)),
      logger,
      onReferencesChanged: (keys) => {
        for (const key of keys) this.queue.add(key);
      },
      usersKnown: () => this.hostPods.hasSynced && this.delegates.hasSynced,
    });
    this.services = new ServiceReflector({
      remote,
      hostServices: options.workloads.services,
      hostNamespaces: options.workloads.namespaces,
      namespaces,
      remoteNamespace: (hostNamespace) => this.namespaces.remoteNamespace(hostNamespace),
      scope: { hostClusterName, nodeName },
      enabled: options.config.services.enabled,
      events: options.events,
      logger,
      usersKnown: () => this.hostPods.hasSynced,
    });
    this.storage = new VolumeProvisioner({
      host,
      remote,
      volumes: options.workloads.volumes,
      namespaces,
      context: {
        scope: { hostClusterName, nodeName },
        remoteName: options.remoteName,
        provisioner: options.config.storage.provisioner,
        classes: options.config.storage.classes,
        remoteNamespace: (hostNamespace) => this.namespaces.remoteNamespace(hostNamespace),
      },
      enabled: options.config.storage.enabled,
      events: options.events,
      logger,
    });
    this.forgeContext = {
      hostClusterName,
      nodeName,
      namespacePrefix: pods.namespacePrefix,
      virtualOnlyLabelKeys: options.virtualOnlyLabelKeys,
      virtualTaintKeys: options.virtualTaintKeys,
      priorityClassExists: (name) => this.priorityClasses.get(name) !== undefined,
      remoteNamespace: (hostNamespace) => this.namespaces.remoteNamespace(hostNamespace),
      workload: {
        tokenMode: (pod) => this.tokenModeOf(pod),
        externalServer,
        remoteClaim: (hostNamespace, claimName) => this.storage.remoteClaim(hostNamespace, claimName),
      },
    };
    this.policy = {
      unschedulable: pods.unschedulable,
      statusSettleMs: pods.statusSettleMilliseconds,
      deletionCost: pods.deletionCost,
      deletionCostAllowed: true,
      releaseKinds: new Set(pods.partition.releaseKinds),
    };
    this.executor = new PodExecutor({
      host,
      remote,
      events: options.events,
      copies: this.reflector,
      namespaces,
      memory: this.memory,
      hostClusterName,
      nodeName,
      flushCapacity: options.capacityRefused,
      deletionCostForbidden: () => {
        this.policy.deletionCostAllowed = false;
      },
      workload: new WorkloadExecutor({
        host,
        remote,
        namespaces,
        memory: this.memory,
        workloadMemory: this.workloadMemory,
        scope: { hostClusterName, nodeName },
        event: (pod, type, reason, message) => this.executor.event(pod, type, reason, message),
      }),
    });
    this.eventMirror = new RemoteEventMirror({
      remote,
      delegates: this.delegates,
      hostPods: this.hostPods,
      events: options.events,
      logger,
    });
    this.hostPods.on((event, pod) => {
      this.reflector.trackHostPod(event, pod);
      this.services.trackHostPod(event, pod);
      this.queue.add(keyOf(pod));
    });
    this.delegates.on((event, delegate) => {
      this.reflector.trackDelegate(event, delegate);
      const hostKey = hostKeyOf(delegate);
      // A delegate changed (scheduled, started, finished): reflecting it is quick and someone is waiting for it.
      if (hostKey) this.queue.add(hostKey, true);
    });
    this.podSecrets.on((_event, secret) => {
      const hostKey = hostKeyOfObject(secret);
      if (hostKey) this.queue.add(hostKey);
    });
  }

  /** The pod's service-account mode (a choice that is not allowed is refused before forging: none here). */
  private tokenModeOf(pod: V1Pod): TokenMode {
    const choice = tokenChoice(pod.metadata?.annotations, this.tokenPolicy);
    return 'mode' in choice ? choice.mode : 'none';
  }

  /** Every pod of these host namespaces again (their mapping or policy changed). */
  private requeueNamespaces(hostNamespaces: readonly string[]): void {
    const wanted = new Set(hostNamespaces);
    for (const pod of this.hostPods.list())
      if (wanted.has(pod.metadata?.namespace ?? '')) this.queue.add(keyOf(pod));
  }

  start(signal: AbortSignal): void {
    this.options.hostObjects.start(signal);
    this.hostPods.start(signal);
    this.delegates.start(signal);
    this.podSecrets.start(signal);
    const unsubscribe = this.namespaces.start();
    signal.addEventListener('abort', unsubscribe, { once: true });
    this.priorityClasses.start(signal);
    this.reflector.start(signal);
    this.services.start(signal);
    this.storage.start(signal);
    this.eventMirror.start(signal);
    this.queue.start(signal);
    void this.scheduleResync(signal);
    signal.addEventListener('abort', () => clearTimeout(this.resyncTimer), { once: true });
  }

  /** Both caches synced: every key has been queued at least once. */
  get synced(): boolean {
    return this.hostPods.hasSynced && this.delegates.hasSynced && this.podSecrets.hasSynced;
  }

  /** Every pod again: after an outage (statuses are written from what the remote shows now), or a mode change. */
  requeueAll(): void {
    for (const pod of this.hostPods.list()) this.queue.add(keyOf(pod));
    for (const delegate of this.delegates.list()) {
      const hostKey = hostKeyOf(delegate);
      if (hostKey) this.queue.add(hostKey);
    }
    for (const secret of this.podSecrets.list()) {
      const hostKey = hostKeyOfObject(secret);
      if (hostKey) this.queue.add(hostKey);
    }
  }

  /**
   * The remote is being removed from the configuration: every delegate and copy of this node is deleted
   * (UID preconditions), and each host pod is failed once its delegate is gone. See {@link drained}.
   */
  drain(): void {
    this.mode = 'drain';
    this.reflector.drain();
    this.services.drain();
    this.requeueAll();
  }

  /** The remote answers again: informers reconnect now rather than after their back-off. */
  wake(): void {
    this.delegates.wake();
    this.podSecrets.wake();
    this.priorityClasses.wake();
    this.reflector.wake();
    this.services.wake();
    this.storage.wake();
  }

  /** After {@link drain}: no delegate, no copy left in the remote, every host pod finished. */
  get drained(): boolean {
    return (
      this.mode === 'drain' &&
      this.synced &&
      this.delegates.size === 0 &&
      this.podSecrets.size === 0 &&
      this.reflector.drained &&
      this.services.drained &&
      this.hostPods.list().every((pod) => isTerminal(pod.status?.phase))
    );
  }

  /** Where the host pod's delegate is (found by its host key, wherever it runs), or would be made. */
  private delegateKey(hostKey: string, uid?: string): string {
    const existing = this.delegateFor(hostKey, uid);
    if (existing) return keyOf(existing);
    const [namespace = '', name = ''] = hostKey.split('/');
    return `${this.namespaces.remoteNamespace(namespace)}/${name}`;
  }

  /** The delegate standing for the host pod (of this UID first: an earlier namesake's goes after it). */
  private delegateFor(hostKey: string, uid?: string): V1Pod | undefined {
    return this.delegatesByHost.get(hostKey, (d) => d.metadata?.labels?.[LABEL_HOST_POD_UID] === uid);
  }

  private async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const log = this.options.logger.child({ pod: key });
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const hostPod = this.hostPods.get(key);
      const uid = hostPod?.metadata?.uid;
      const delegate = this.delegateFor(key, uid);
      if (uid && delegate?.metadata?.labels?.[LABEL_HOST_POD_UID] === uid) this.memory.delegateSeen(key, uid);
      const actions = plan(hostPod, delegate, this.facts(key, hostPod));
      if (log.isLevelEnabled('trace')) log.trace({ actions: actions.map((a) => a.kind) }, 'planned');
      const result = await this.executor.execute(hostPod, key, actions, log);
      if (!result.replan)
        return result.requeueAfter !== undefined ? { requeueAfter: result.requeueAfter } : undefined;
    }
    return { requeueAfter: 1000 };
  }

  private facts(key: string, hostPod: V1Pod | undefined): PodFacts {
    const o = this.options;
    const now = Date.now();
    return {
      now,
      delegateKey: this.delegateKey(key, hostPod?.metadata?.uid),
      remoteName: o.remoteName,
      synced: {
        hostPods: this.hostPods.hasSynced && o.hostObjects.synced && o.workloads.namespaces.synced,
        delegates: this.delegates.hasSynced && this.podSecrets.hasSynced,
      },
      delegatesCurrentThrough: this.delegates.currentThrough(now),
      remote: o.reachability(),
      nodeOutOfService: o.nodeOutOfService(),
      mode: this.mode,
      recall: this.memory.recall(key, hostPod?.metadata?.uid ?? '', hostPod?.metadata?.resourceVersion, now),
      deleteRequestedAt: (uid) => this.memory.deleteRequestedAt(uid),
      policy: this.policy,
      hostIP: o.kubeletAddress,
      desired: () => {
        this.forges++;
        return delegatePod(hostPod as V1Pod, this.forgeContext);
      },
      admission: () =>
        admissionRefusal(hostPod as V1Pod, {
          remoteName: o.remoteName,
          nodeName: o.nodeName,
          allowDaemonSets: o.pods.daemonSets === 'allow',
          fit: o.fit,
        }),
      references: () =>
        this.reflector.check(
          hostPod?.metadata?.namespace ?? '',
          this.reflector.referencesOf(key) ??
            delegateReferences(hostPod?.spec, hostPod ? this.tokenModeOf(hostPod) : 'none'),
        ),
      podSecret: () => this.podSecretFacts(key, hostPod),
      namespacePolicy: () => this.namespaces.verdict(hostPod?.metadata?.namespace ?? ''),
      volumes: () => this.storage.verdict(hostPod as V1Pod),
    };
  }

  private podSecretFacts(key: string, hostPod: V1Pod | undefined): PodSecretFacts {
    const uid = hostPod?.metadata?.uid ?? '';
    const cachedSecret = this.podSecretsByHost.get(
      key,
      (s) => s.metadata?.labels?.[LABEL_HOST_POD_UID] === uid,
    );
    const cached = cachedSecret ? viewOf(cachedSecret) : undefined;
    const current = hostPod ? this.workloadMemory.podSecret(key, uid, cached) : cached;
    const maxTokenAgeMs = this.tokenPolicy.maxTokenAgeMs;
    if (!hostPod) return { current, maxTokenAgeMs };
    const choice = tokenChoice(hostPod.metadata?.annotations, this.tokenPolicy);
    if ('refusal' in choice)
      return { current, maxTokenAgeMs, refusal: { ...choice.refusal, outcome: 'wait' } };
    const remoteNamespace = this.delegateKey(key, uid).split('/')[0] ?? '';
    const desired = podSecretSpec(
      hostPod,
      { hostClusterName: this.options.hostClusterName, nodeName: this.options.nodeName },
      remoteNamespace,
      choice.mode,
    );
    return {
      desired,
      current,
      maxTokenAgeMs,
      failure: this.workloadMemory.failure(key, uid),
      conflict: this.workloadMemory.conflict(key, uid),
    };
  }

  /**
   * Every pod again, periodically, whatever the events said: a safety net for missed events, and the
   * continuous collection of orphans (delegates whose host pod is gone) and unused reflected objects.
   */
  private async scheduleResync(signal: AbortSignal): Promise<void> {
    await Promise.all([this.hostPods.ready, this.delegates.ready]);
    if (signal.aborted) return;
    const resync = () => {
      this.requeueAll();
      if (this.reflector.synced) this.reflector.collectUnused();
      this.resyncTimer = setTimeout(resync, this.options.pods.resyncSeconds * 1000);
      this.resyncTimer.unref();
    };
    // The informers' initial lists queue every key once; a first resync soon after that also collects
    // what a previous run left behind (reflected objects no pod uses), then one every period.
    this.resyncTimer = setTimeout(resync, Math.min(30, this.options.pods.resyncSeconds) * 1000);
    this.resyncTimer.unref();
  }

  /** Where a host pod runs: its delegate in the remote cluster, if it has one. */
  delegateOf(namespace: string, name: string): DelegateRef | undefined {
    const uid = this.hostPods.get(`${namespace}/${name}`)?.metadata?.uid;
    const delegate = this.delegateFor(`${namespace}/${name}`, uid);
    if (!delegate) return undefined;
    return {
      namespace: delegate.metadata?.namespace ?? '',
      name: delegate.metadata?.name ?? '',
      uid: delegate.metadata?.uid,
    };
  }
}

function hostKeyOf(delegate: V1Pod): string | undefined {
  const namespace = delegate.metadata?.annotations?.[ANNOTATION_HOST_NAMESPACE];
  const name = delegate.metadata?.annotations?.[ANNOTATION_HOST_NAME];
  return namespace && name ? `${namespace}/${name}` : undefined;
}
