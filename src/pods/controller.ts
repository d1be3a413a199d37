// Pod mirroring for one virtual node: host pods bound to the node and their delegates in the remote
// cluster feed one keyed work queue (the key is always the host pod's namespace/name, whichever side
// changed), so one pod is never reconciled twice at once and both sides are seen together.
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { PodsConfig } from '../config.ts';
import type { ClusterClient } from '../kube/client.ts';
import { isNotFound } from '../kube/errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import { Informer, keyOf } from '../kube/informer.ts';
import type { ResourceList } from '../kube/quantity.ts';
import type { FitRefusal } from '../node/fragmentation.ts';
import { LABEL_VIRTUAL_NODE, ownedSelector } from '../ownership.ts';
import { WorkQueue } from '../queue/workqueue.ts';
import { admissionRefusal } from './admission.ts';
import { type PodContext, PodMemory } from './context.ts';
import {
  ANNOTATION_HOST_NAME,
  ANNOTATION_HOST_NAMESPACE,
  delegateNamespace,
  delegatePod,
  delegateReferences,
  type ForgeContext,
} from './forge.ts';
import { RemoteNamespaces } from './namespaces.ts';
import { reconcilePod } from './reconcile.ts';
import { referenceKey } from './references.ts';
import { Reflector } from './reflect.ts';
import { RemoteEventMirror } from './remote-events.ts';
import { trimDelegate, trimHostPod } from './trim.ts';
import { PodWrites } from './writes.ts';

export interface PodControllerOptions {
  readonly host: ClusterClient;
  readonly remote: ClusterClient;
  readonly events: EventRecorder;
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
  readonly logger: Logger;
}

export interface DelegateRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string | undefined;
}

export class PodController {
  readonly hostPods: Informer<V1Pod>;
  readonly delegates: Informer<V1Pod>;
  /** Selects this node's delegates in the remote cluster (and nothing another host or node owns). */
  readonly delegateSelector: string;
  readonly writes: PodWrites;
  readonly queue: WorkQueue;
  private readonly options: PodControllerOptions;
  private readonly reflector: Reflector;
  private readonly eventMirror: RemoteEventMirror;
  private readonly priorityClasses = new Map<string, { exists: boolean; at: number }>();
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
    });
    this.delegateSelector = `${ownedSelector(hostClusterName)},${LABEL_VIRTUAL_NODE}=${nodeName}`;
    this.delegates = new Informer<V1Pod>({
      name: `${remote.name}/delegates/${nodeName}`,
      client: remote,
      path: '/api/v1/pods',
      labelSelector: this.delegateSelector,
      transform: trimDelegate,
      logger,
    });
    this.queue = new WorkQueue({
      name: `pods/${nodeName}`,
      workers: pods.workers,
      logger,
      reconcile: (key) => reconcilePod(key, this.context, this.writes),
    });
    this.reflector = new Reflector({
      host,
      remote,
      hostClusterName,
      nodeName,
      namespacePrefix: pods.namespacePrefix,
      logger,
      onReferencesChanged: (keys) => {
        for (const key of keys) this.queue.add(key);
      },
    });
    const memory = new PodMemory();
    const forgeContext: ForgeContext = {
      hostClusterName,
      nodeName,
      namespacePrefix: pods.namespacePrefix,
      virtualOnlyLabelKeys: options.virtualOnlyLabelKeys,
      virtualTaintKeys: options.virtualTaintKeys,
      priorityClassExists: (name) => this.priorityClasses.get(name)?.exists === true,
    };
    this.context = {
      hostPods: this.hostPods,
      delegates: this.delegates,
      remoteName: options.remoteName,
      logger,
      reflector: this.reflector,
      memory,
      unschedulable: pods.unschedulable,
      statusSettleMs: pods.statusSettleMilliseconds,
      delegateKey: (hostKey) => {
        const [namespace, name] = hostKey.split('/') as [string, string];
        return `${delegateNamespace(namespace, pods.namespacePrefix)}/${name}`;
      },
      prepare: async (hostPod) => {
        const priorityClass = hostPod.spec?.priorityClassName;
        if (priorityClass) await this.lookUpPriorityClass(priorityClass);
      },
      forge: (hostPod) => delegatePod(hostPod, forgeContext),
      statusContext: () => ({ hostIP: options.kubeletAddress, now: new Date().toISOString() }),
      admit: (hostPod) =>
        admissionRefusal(hostPod, {
          remoteName: options.remoteName,
          nodeName,
          allowDaemonSets: pods.daemonSets === 'allow',
          fit: options.fit,
        }),
      deletionCost: pods.deletionCost,
      capacityRefused: options.capacityRefused,
    };
    this.writes = new PodWrites({
      host,
      remote,
      events: options.events,
      namespaces: new RemoteNamespaces(remote),
      hostClusterName,
      nodeName,
      context: this.context,
    });
    this.eventMirror = new RemoteEventMirror({
      remote,
      delegates: this.delegates,
      hostPods: this.hostPods,
      events: options.events,
      logger,
    });
    this.hostPods.on((_event, pod) => this.queue.add(keyOf(pod)));
    this.delegates.on((_event, delegate) => {
      const namespace = delegate.metadata?.annotations?.[ANNOTATION_HOST_NAMESPACE];
      const name = delegate.metadata?.annotations?.[ANNOTATION_HOST_NAME];
      // A delegate changed (scheduled, started, finished): reflecting it is quick and someone is waiting for it.
      if (namespace && name) this.queue.add(`${namespace}/${name}`, true);
    });
  }

  readonly context: PodContext;

  start(signal: AbortSignal): void {
    this.hostPods.start(signal);
    this.delegates.start(signal);
    this.reflector.start(signal);
    this.eventMirror.start(signal);
    this.queue.start(signal);
    void this.scheduleResync(signal);
    signal.addEventListener('abort', () => clearTimeout(this.resyncTimer), { once: true });
  }

  /** Both caches synced: every key has been queued at least once. */
  get synced(): boolean {
    return this.hostPods.hasSynced && this.delegates.hasSynced;
  }

  /**
   * Every pod again, periodically, whatever the events said: a safety net for missed events, and the
   * continuous collection of orphans (delegates whose host pod is gone) and unused reflected objects.
   */
  private async scheduleResync(signal: AbortSignal): Promise<void> {
    await Promise.all([this.hostPods.ready, this.delegates.ready]);
    if (signal.aborted) return;
    const resync = () => {
      for (const pod of this.hostPods.list()) this.queue.add(keyOf(pod));
      for (const delegate of this.delegates.list()) {
        const namespace = delegate.metadata?.annotations?.[ANNOTATION_HOST_NAMESPACE];
        const name = delegate.metadata?.annotations?.[ANNOTATION_HOST_NAME];
        if (namespace && name) this.queue.add(`${namespace}/${name}`);
      }
      if (this.reflector.synced) {
        const referenced = new Set<string>();
        for (const pod of this.hostPods.list()) {
          for (const ref of delegateReferences(pod.spec)) {
            referenced.add(referenceKey(ref.kind, pod.metadata?.namespace ?? '', ref.name));
          }
        }
        this.reflector.collectUnused(referenced);
      }
      this.resyncTimer = setTimeout(resync, this.options.pods.resyncSeconds * 1000);
      this.resyncTimer.unref();
    };
    // The informers' initial lists queue every key once; a first resync soon after that also collects
    // what a previous run left behind (reflected objects no pod uses), then one every period.
    this.resyncTimer = setTimeout(resync, Math.min(30, this.options.pods.resyncSeconds) * 1000);
    this.resyncTimer.unref();
  }

  /** Whether a PriorityClass exists in the remote, looked up once a minute at most per name. */
  private async lookUpPriorityClass(name: string): Promise<void> {
    const known = this.priorityClasses.get(name);
    if (known && Date.now() - known.at < 60_000) return;
    try {
      await this.options.remote.get(`/apis/scheduling.k8s.io/v1/priorityclasses/${name}`, { attempts: 2 });
      this.priorityClasses.set(name, { exists: true, at: Date.now() });
    } catch (error) {
      if (!isNotFound(error))
        throw new Error(`looking up PriorityClass ${name} in the remote cluster`, { cause: error });
      this.priorityClasses.set(name, { exists: false, at: Date.now() });
    }
  }

  /** Where a host pod runs: its delegate in the remote cluster, if it has one. */
  delegateOf(namespace: string, name: string): DelegateRef | undefined {
    const delegate = this.delegates.get(this.context.delegateKey(`${namespace}/${name}`));
    if (!delegate) return undefined;
    return {
      namespace: delegate.metadata?.namespace ?? '',
      name: delegate.metadata?.name ?? '',
      uid: delegate.metadata?.uid,
    };
  }
}
