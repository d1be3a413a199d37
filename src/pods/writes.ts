// The writes a pod reconcile makes, each guarded so it only ever touches Spillway's own objects:
// delegate create (idempotent by name and ownership labels), delegate delete (UID precondition),
// host pod finalisation (UID precondition), host status (resourceVersion precondition).
import type { V1Pod, V1PodStatus } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import {
  isAlreadyExists,
  isConflict,
  isForbidden,
  isInvalid,
  isNotFound,
  messageOf,
  statusCodeOf,
  TerminalError,
} from '../kube/errors.ts';
import type { EventRecorder, EventType } from '../kube/events.ts';
import { isOwnedObject, LABEL_HOST_POD_UID, LABEL_VIRTUAL_NODE } from '../ownership.ts';
import type { ReconcileResult } from '../queue/workqueue.ts';
import type { PodContext } from './context.ts';
import { DeletionCostMarker } from './deletion-cost.ts';
import { delegateReferences } from './forge.ts';
import type { RemoteNamespaces } from './namespaces.ts';
import { failedStatus, statusesEqual, withVerdict } from './status.ts';

export interface PodWritesOptions {
  readonly host: ClusterClient;
  readonly remote: ClusterClient;
  readonly events: EventRecorder;
  readonly namespaces: RemoteNamespaces;
  readonly hostClusterName: string;
  readonly nodeName: string;
  readonly context: PodContext;
}

const podPath = (namespace: string | undefined, name: string | undefined) =>
  `/api/v1/namespaces/${namespace}/pods/${name}`;
const keyOf = (pod: V1Pod) => `${pod.metadata?.namespace}/${pod.metadata?.name}`;

/** Volume kinds a delegate cannot use: the claim or disk lives in the host cluster. */
const UNSUPPORTED_VOLUMES = ['persistentVolumeClaim', 'ephemeral'] as const;

export class PodWrites {
  private readonly options: PodWritesOptions;
  /** Counts of writes, by kind (tests and the benchmark read them). */
  readonly counts = {
    delegateCreates: 0,
    delegateDeletes: 0,
    delegatePatches: 0,
    hostStatusWrites: 0,
    hostFinalizes: 0,
  };

  readonly deletionCost: DeletionCostMarker;

  constructor(options: PodWritesOptions) {
    this.options = options;
    this.deletionCost = new DeletionCostMarker(options.host, options.context);
  }

  private get context(): PodContext {
    return this.options.context;
  }

  async event(pod: V1Pod, type: EventType, reason: string, message: string): Promise<void> {
    await this.options.events.record(
      {
        kind: 'Pod',
        name: pod.metadata?.name ?? '',
        namespace: pod.metadata?.namespace,
        uid: pod.metadata?.uid,
      },
      type,
      reason,
      message,
    );
  }

  /** Writes the host pod's status if it differs from what it is (or what we last wrote). */
  async writeHostStatus(hostPod: V1Pod, status: V1PodStatus): Promise<void> {
    const key = keyOf(hostPod);
    const written = this.context.memory.writtenStatus(key, hostPod);
    const current = written?.status ?? hostPod.status;
    if (statusesEqual(current, status)) return;
    // A merge patch leaves absent keys alone: fields that went away are nulled explicitly.
    const patch: Record<string, unknown> = { ...status };
    for (const field of Object.keys(current ?? {})) if (!(field in status)) patch[field] = null;
    try {
      const updated = await this.options.host.patch<V1Pod>(
        `${podPath(hostPod.metadata?.namespace, hostPod.metadata?.name)}/status`,
        {
          metadata: { resourceVersion: written?.resourceVersion ?? hostPod.metadata?.resourceVersion },
          status: patch,
        },
        'merge',
      );
      this.counts.hostStatusWrites++;
      this.context.memory.rememberStatus(
        key,
        updated.metadata?.resourceVersion ?? '',
        updated.status ?? status,
      );
    } catch (error) {
      this.context.memory.forgetStatus(key);
      if (isNotFound(error)) return; // the pod went away meanwhile; its deletion requeues the key
      throw new Error(`writing status of host pod ${key}`, { cause: error });
    }
  }

  /** Refuses the pod: an event, and the reason on its status; it stays Pending (nothing dropped silently). */
  private async refuse(
    hostPod: V1Pod,
    reason: string,
    message: string,
    waiting?: { reason: string },
  ): Promise<void> {
    let status = withVerdict(
      hostPod.status ?? {},
      { status: 'False', reason, message },
      new Date().toISOString(),
    );
    if (waiting) {
      status = {
        ...status,
        containerStatuses: (hostPod.spec?.containers ?? []).map((c) => ({
          name: c.name,
          image: c.image ?? '',
          imageID: '',
          ready: false,
          restartCount: 0,
          started: false,
          state: { waiting: { reason: waiting.reason, message } },
        })),
      };
    }
    await this.writeHostStatus(hostPod, status);
    await this.event(hostPod, 'Warning', reason, message);
  }

  /**
   * Reflects the ConfigMaps and Secrets the pod uses. Returns a result when the pod must wait (a
   * mandatory object is missing, or a same-named remote object is not ours), after saying why.
   */
  async reflect(hostPod: V1Pod): Promise<ReconcileResult | undefined> {
    const key = keyOf(hostPod);
    const result = await this.context.reflector.reflect(
      key,
      hostPod.metadata?.namespace ?? '',
      delegateReferences(hostPod.spec),
    );
    if (result.missing.length > 0) {
      const what = result.missing.map((r) => `${r.kind.toLowerCase()} "${r.name}" not found`).join(', ');
      await this.refuse(hostPod, 'MissingReference', what, { reason: 'CreateContainerConfigError' });
      // The object appearing requeues the pod at once; this is the backstop.
      return { requeueAfter: 60_000 };
    }
    if (result.conflicts.length > 0) {
      await this.refuse(hostPod, 'ReflectionConflict', result.conflicts.join('; '));
      return { requeueAfter: 60_000 };
    }
    return undefined;
  }

  async createDelegate(hostPod: V1Pod, log: Logger): Promise<ReconcileResult | undefined> {
    const key = keyOf(hostPod);
    const uid = hostPod.metadata?.uid ?? '';
    const unsupported = (hostPod.spec?.volumes ?? []).find((v) =>
      UNSUPPORTED_VOLUMES.some((kind) => v[kind]),
    );
    if (unsupported) {
      await this.refuse(
        hostPod,
        'UnsupportedVolume',
        `volume "${unsupported.name}" needs storage of the host cluster, which a remote cluster cannot mount`,
      );
      throw new TerminalError(`pod ${key} uses an unsupported volume`);
    }
    await this.context.prepare(hostPod);
    const delegate = this.context.forge(hostPod);
    const namespace = delegate.metadata?.namespace as string;
    await this.options.namespaces.ensure(namespace);
    const waiting = await this.reflect(hostPod);
    if (waiting) return waiting;
    try {
      await this.options.remote.create(`/api/v1/namespaces/${namespace}/pods`, delegate);
      this.counts.delegateCreates++;
      this.context.memory.rememberCreate(key, uid);
      log.debug({ delegate: `${namespace}/${delegate.metadata?.name}` }, 'created delegate');
      return undefined;
    } catch (error) {
      if (isAlreadyExists(error)) return this.resolveExisting(hostPod, delegate, log);
      if (isNotFound(error)) {
        // The remote namespace went away under us; create it again next time.
        this.options.namespaces.forget(namespace);
        throw error;
      }
      if (isInvalid(error) || statusCodeOf(error) === 400) {
        const message = `remote cluster ${this.context.remoteName} rejected the delegate: ${messageOf(error)}`;
        await this.writeHostStatus(
          hostPod,
          failedStatus(hostPod, 'DelegateRejected', message, this.context.statusContext()),
        );
        await this.event(hostPod, 'Warning', 'DelegateRejected', message);
        throw new TerminalError(message, { cause: error });
      }
      if (isForbidden(error)) {
        // Admission policy or quota: may pass later (quota freed, policy changed); keep retrying.
        await this.refuse(
          hostPod,
          'DelegateForbidden',
          `remote cluster ${this.context.remoteName} refused the delegate: ${messageOf(error)}`,
        );
      }
      throw new Error(`creating delegate for ${key}`, { cause: error });
    }
  }

  /** The name is taken: ours and current (informer lag), ours but stale (a namesake's), or someone else's. */
  private async resolveExisting(
    hostPod: V1Pod,
    delegate: V1Pod,
    log: Logger,
  ): Promise<ReconcileResult | undefined> {
    const path = podPath(delegate.metadata?.namespace, delegate.metadata?.name);
    const existing = await this.options.remote.get<V1Pod>(path);
    const labels = existing.metadata?.labels;
    const ours =
      isOwnedObject(labels, this.options.hostClusterName) &&
      labels?.[LABEL_VIRTUAL_NODE] === this.options.nodeName;
    if (ours && labels?.[LABEL_HOST_POD_UID] === hostPod.metadata?.uid) {
      this.context.memory.rememberCreate(keyOf(hostPod), hostPod.metadata?.uid ?? '');
      return undefined;
    }
    if (ours) {
      log.info('a stale delegate of an earlier pod holds the name; deleting it');
      await this.deleteDelegate(existing, 0);
      return { requeueAfter: 1000 };
    }
    const message =
      `a pod named ${delegate.metadata?.namespace}/${delegate.metadata?.name} already exists in remote cluster ` +
      `${this.context.remoteName} and is not this Spillway's (host cluster ${this.options.hostClusterName}); it is left alone`;
    await this.refuse(hostPod, 'DelegateNameConflict', message);
    return { requeueAfter: 30_000 };
  }

  /** Deletes a delegate, only if it is still the one we saw (UID precondition). */
  async deleteDelegate(delegate: V1Pod, gracePeriodSeconds: number | undefined): Promise<void> {
    this.context.memory.rememberDelete(delegate.metadata?.uid);
    try {
      await this.options.remote.delete(podPath(delegate.metadata?.namespace, delegate.metadata?.name), {
        preconditions: { uid: delegate.metadata?.uid },
        ...(gracePeriodSeconds !== undefined ? { gracePeriodSeconds } : {}),
      });
      this.counts.delegateDeletes++;
    } catch (error) {
      // Gone already, or replaced by another pod of that name (which we must not touch).
      if (isNotFound(error) || isConflict(error)) return;
      throw new Error(`deleting delegate ${delegate.metadata?.namespace}/${delegate.metadata?.name}`, {
        cause: error,
      });
    }
  }

  async patchDelegate(delegate: V1Pod, patch: Record<string, unknown>, log: Logger): Promise<void> {
    log.debug({ patch }, 'updating delegate');
    const metadata = { ...(patch.metadata as object), resourceVersion: delegate.metadata?.resourceVersion };
    try {
      await this.options.remote.patch(
        podPath(delegate.metadata?.namespace, delegate.metadata?.name),
        { ...patch, metadata },
        'strategic',
      );
      this.counts.delegatePatches++;
    } catch (error) {
      throw new Error(`updating delegate ${delegate.metadata?.namespace}/${delegate.metadata?.name}`, {
        cause: error,
      });
    }
  }

  /** Removes the host pod object once its delegate is gone, as a kubelet does (grace 0, UID precondition). */
  async finalizeHostPod(hostPod: V1Pod): Promise<void> {
    try {
      await this.options.host.delete(podPath(hostPod.metadata?.namespace, hostPod.metadata?.name), {
        gracePeriodSeconds: 0,
        preconditions: { uid: hostPod.metadata?.uid },
      });
      this.counts.hostFinalizes++;
      this.context.memory.forget(keyOf(hostPod));
    } catch (error) {
      if (isNotFound(error) || isConflict(error)) return;
      throw new Error(`finalising host pod ${keyOf(hostPod)}`, { cause: error });
    }
  }
}
