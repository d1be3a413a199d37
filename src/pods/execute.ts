// Applies what plan() decided, in order, each write with its precondition: a delegate create is
// idempotent (deterministic name, ownership labels), deletes carry the UID they were planned for,
// status writes the resourceVersion they were computed from, patches the delegate's resourceVersion.
// It decides nothing: a remote answer that calls for a decision (the name is taken, the pod is
// rejected or forbidden) is remembered, and the key is planned again with that knowledge.
import type { V1Pod } from '@kubernetes/client-node';
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
import type { EventTarget, EventType } from '../kube/events.ts';
import { isOwnedObject, LABEL_HOST_POD_UID, LABEL_VIRTUAL_NODE } from '../ownership.ts';
import type { WorkloadExecutor } from './execute-workload.ts';
import type { PodMemory } from './memory.ts';
import type { PodAction, StatusWrite } from './plan.ts';
import type { Reference } from './references.ts';

/** The calls the executor makes on a cluster. */
export type ClusterWrites = Pick<ClusterClient, 'create' | 'get' | 'patch' | 'delete'>;

export interface EventSink {
  record(target: EventTarget, type: EventType, reason: string, message: string): Promise<void>;
}

/** Writes the remote copies of a pod's ConfigMaps and Secrets, so its delegate can be created. */
export interface CopyWriter {
  ensure(
    hostNamespace: string,
    references: readonly Reference[],
  ): Promise<{ readonly missing: readonly Reference[]; readonly conflicts: readonly string[] }>;
}

export interface NamespaceEnsurer {
  ensure(namespace: string): Promise<void>;
  /** The namespace was found gone (or going): the next create makes it again. */
  forget(namespace: string): void;
  isGone(error: unknown): boolean;
}

export interface ExecutorOptions {
  readonly host: ClusterWrites;
  readonly remote: ClusterWrites;
  readonly events: EventSink;
  readonly copies: CopyWriter;
  readonly namespaces: NamespaceEnsurer;
  readonly memory: PodMemory;
  readonly hostClusterName: string;
  readonly nodeName: string;
  /** Resolves once the virtual node has published capacity capped for a refusal (bounded wait). */
  readonly flushCapacity: () => Promise<void>;
  /** The host refused a pod-deletion-cost patch (older RBAC): stop trying. */
  readonly deletionCostForbidden: () => void;
  /** The pod's own Secret, ephemeral containers and resizes (see execute-workload.ts). */
  readonly workload: WorkloadExecutor;
}

export interface Execution {
  /** Plan the key again now: an answer came back that the planner must decide on. */
  readonly replan: boolean;
  readonly requeueAfter?: number;
}

const podPath = (namespace: string | undefined, name: string | undefined) =>
  `/api/v1/namespaces/${namespace}/pods/${name}`;

export class PodExecutor {
  private readonly options: ExecutorOptions;
  /** Writes by kind (tests read them: a no-op reconcile adds none). */
  readonly counts = {
    delegateCreates: 0,
    delegateDeletes: 0,
    delegatePatches: 0,
    hostStatusWrites: 0,
    hostFinalizes: 0,
    events: 0,
    deletionCosts: 0,
  };

  constructor(options: ExecutorOptions) {
    this.options = options;
  }

  /** Every API call made so far. */
  get calls(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0) + this.options.workload.calls;
  }

  async execute(hostPod: V1Pod | undefined, key: string, actions: readonly PodAction[], log: Logger) {
    let requeueAfter: number | undefined;
    for (const action of actions) {
      switch (action.kind) {
        case 'requeue':
          requeueAfter = action.afterMs;
          break;
        case 'forget':
          this.options.memory.forget(key);
          break;
        case 'deleteDelegate':
          log.info(
            { delegate: `${action.target.namespace}/${action.target.name}` },
            `deleting delegate: ${action.why}`,
          );
          await this.deleteDelegate(action.target, action.gracePeriodSeconds);
          break;
        case 'deletePodSecret':
          log.info(
            { secret: `${action.target.namespace}/${action.target.name}` },
            `deleting the pod's Secret: ${action.why}`,
          );
          await this.options.workload.deletePodSecret(action.target, key);
          break;
        case 'giveUp':
          throw new TerminalError(`pod ${key}: ${action.message}`);
        default: {
          if (!hostPod) throw new Error(`action ${action.kind} planned for ${key}, whose host pod is gone`);
          const outcome = await this.onHostPod(hostPod, key, action, log);
          if (outcome === 'replan') return { replan: true } satisfies Execution;
          if (outcome === 'gone') return { replan: false } satisfies Execution;
        }
      }
    }
    return { replan: false, requeueAfter } satisfies Execution;
  }

  /** An action about a host pod that exists; 'gone' when it turned out not to (nothing more to do). */
  private async onHostPod(
    hostPod: V1Pod,
    key: string,
    action: Exclude<
      PodAction,
      { kind: 'requeue' | 'forget' | 'deleteDelegate' | 'deletePodSecret' | 'giveUp' }
    >,
    log: Logger,
  ): Promise<'replan' | 'gone' | undefined> {
    const { memory } = this.options;
    const uid = hostPod.metadata?.uid ?? '';
    switch (action.kind) {
      case 'createDelegate':
        return this.createDelegate(hostPod, key, action.delegate, action.references, log);
      case 'patchDelegate':
        log.debug({ patch: action.patch }, 'updating delegate');
        await this.patchDelegate(
          action.target.namespace,
          action.target.name,
          action.resourceVersion,
          action.patch,
        );
        return undefined;
      case 'writeStatus':
        return (await this.writeStatus(hostPod, key, action.write)) ? undefined : 'gone';
      case 'refuse': {
        log.info({ reason: action.reason }, action.message);
        if (!(await this.writeStatus(hostPod, key, action.write))) return 'gone';
        await this.event(hostPod, 'Warning', action.reason, action.message);
        return undefined;
      }
      case 'event':
        if (action.once && memory.recall(key, uid, undefined).announced.has(action.reason)) return undefined;
        if (action.once) memory.announce(key, uid, action.reason);
        await this.event(hostPod, action.type, action.reason, action.message);
        return undefined;
      case 'finalize':
        log.info(`finalising host pod: ${action.why}`);
        await this.finalize(hostPod, key);
        return 'gone';
      case 'flushCapacity':
        await this.options.flushCapacity();
        return undefined;
      case 'setDeletionCost':
        await this.setDeletionCost(hostPod, key, action.cost, log);
        return undefined;
      case 'markUnschedulable':
        memory.markUnschedulable(key, uid, action.since);
        return undefined;
      case 'clearUnschedulable':
        memory.clearUnschedulable(key, uid);
        return undefined;
      case 'markSpecInSync':
        memory.markSpecInSync(key, uid, action.host, action.delegate);
        return undefined;
      case 'writePodSecret':
        return this.options.workload.writePodSecret(hostPod, key, action.write, log);
      case 'addEphemeralContainers':
      case 'resizeDelegate':
        await this.options.workload.subresources.apply(hostPod, key, action, log);
        return undefined;
    }
  }

  async event(pod: V1Pod, type: EventType, reason: string, message: string): Promise<void> {
    this.counts.events++;
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

  private async createDelegate(
    hostPod: V1Pod,
    key: string,
    delegate: V1Pod,
    references: readonly Reference[],
    log: Logger,
  ): Promise<'replan' | undefined> {
    const { memory, namespaces, remote } = this.options;
    const uid = hostPod.metadata?.uid ?? '';
    const namespace = delegate.metadata?.namespace ?? '';
    await namespaces.ensure(namespace);
    const copies = await this.options.copies.ensure(hostPod.metadata?.namespace ?? '', references);
    // The caches were behind (an object went away, a foreign one appeared): the planner says why.
    if (copies.missing.length > 0 || copies.conflicts.length > 0) return 'replan';
    memory.rememberAttempt(key, uid);
    try {
      await remote.create(`/api/v1/namespaces/${namespace}/pods`, delegate);
      this.counts.delegateCreates++;
      memory.rememberCreate(key, uid);
      log.debug({ delegate: `${namespace}/${delegate.metadata?.name}` }, 'created delegate');
      return undefined;
    } catch (error) {
      if (isAlreadyExists(error)) return this.nameTaken(hostPod, key, delegate);
      if (namespaces.isGone(error)) {
        memory.rememberOutcome(key, uid, undefined);
        namespaces.forget(namespace);
        throw new Error(`remote namespace ${namespace} is gone; creating it again`, { cause: error });
      }
      if (isInvalid(error) || statusCodeOf(error) === 400) {
        memory.rememberOutcome(key, uid, { kind: 'rejected', message: messageOf(error) });
        return 'replan';
      }
      if (isForbidden(error)) {
        const previous = memory.recall(key, uid, undefined).outcome;
        const attempts = previous?.kind === 'forbidden' ? previous.attempts + 1 : 1;
        memory.rememberOutcome(key, uid, { kind: 'forbidden', message: messageOf(error), attempts });
        return 'replan';
      }
      // Any other answer means nothing was created; no answer (the network) leaves the attempt uncertain.
      if (statusCodeOf(error) !== undefined && statusCodeOf(error) !== 500 && statusCodeOf(error) !== 504) {
        memory.rememberOutcome(key, uid, undefined);
      }
      throw new Error(`creating delegate for ${key}`, { cause: error });
    }
  }

  /** The name is taken: by our delegate not seen yet, by an earlier pod's delegate, or by someone else's pod. */
  private async nameTaken(hostPod: V1Pod, key: string, delegate: V1Pod): Promise<'replan' | undefined> {
    const { memory, remote, hostClusterName, nodeName } = this.options;
    const uid = hostPod.metadata?.uid ?? '';
    const existing = await remote.get<V1Pod>(podPath(delegate.metadata?.namespace, delegate.metadata?.name));
    const labels = existing.metadata?.labels;
    const ours = isOwnedObject(labels, hostClusterName) && labels?.[LABEL_VIRTUAL_NODE] === nodeName;
    if (ours && labels?.[LABEL_HOST_POD_UID] === uid) {
      memory.rememberCreate(key, uid);
      return undefined;
    }
    if (ours) {
      // An earlier pod's delegate: the informer shows it shortly, and the planner deletes it.
      memory.rememberOutcome(key, uid, undefined);
      return undefined;
    }
    memory.rememberOutcome(key, uid, {
      kind: 'nameTaken',
      message:
        `a pod named ${delegate.metadata?.namespace}/${delegate.metadata?.name} already exists in the remote cluster ` +
        `and is not this Spillway's (host cluster ${hostClusterName}); it is left alone`,
    });
    return 'replan';
  }

  /** Deletes a delegate only if it is still the one planned for (UID precondition). */
  private async deleteDelegate(
    target: { namespace: string; name: string; uid: string },
    gracePeriodSeconds: number | undefined,
  ): Promise<void> {
    this.options.memory.rememberDelete(target.uid);
    try {
      await this.options.remote.delete(podPath(target.namespace, target.name), {
        preconditions: { uid: target.uid },
        ...(gracePeriodSeconds !== undefined ? { gracePeriodSeconds } : {}),
      });
      this.counts.delegateDeletes++;
    } catch (error) {
      // Gone already, or replaced by another pod of that name (which we must not touch).
      if (isNotFound(error) || isConflict(error)) return;
      throw new Error(`deleting delegate ${target.namespace}/${target.name}`, { cause: error });
    }
  }

  private async patchDelegate(
    namespace: string,
    name: string,
    resourceVersion: string,
    patch: Record<string, unknown>,
  ): Promise<void> {
    const metadata = { ...(patch.metadata as object), resourceVersion };
    try {
      await this.options.remote.patch(podPath(namespace, name), { ...patch, metadata }, 'strategic');
      this.counts.delegatePatches++;
    } catch (error) {
      throw new Error(`updating delegate ${namespace}/${name}`, { cause: error });
    }
  }

  /** Writes the host pod's status; false if the pod is gone. */
  private async writeStatus(hostPod: V1Pod, key: string, write: StatusWrite): Promise<boolean> {
    const { memory, host } = this.options;
    const uid = hostPod.metadata?.uid ?? '';
    try {
      const updated = await host.patch<V1Pod>(
        `${podPath(hostPod.metadata?.namespace, hostPod.metadata?.name)}/status`,
        { metadata: { resourceVersion: write.resourceVersion }, status: write.patch },
        'merge',
      );
      this.counts.hostStatusWrites++;
      memory.rememberStatus(
        key,
        uid,
        updated.metadata?.resourceVersion ?? '',
        updated.status ?? write.status,
      );
      return true;
    } catch (error) {
      memory.forgetStatus(key, uid);
      if (isNotFound(error)) return false; // the pod went away meanwhile; its deletion requeues the key
      throw new Error(`writing status of host pod ${key}`, { cause: error });
    }
  }

  /** Removes the host pod object once its delegate's fate is known, as a kubelet does (grace 0, UID precondition). */
  private async finalize(hostPod: V1Pod, key: string): Promise<void> {
    // Remembered like a delegate's delete: until the informer shows the pod gone, it is not asked again.
    this.options.memory.rememberDelete(hostPod.metadata?.uid);
    try {
      await this.options.host.delete(podPath(hostPod.metadata?.namespace, hostPod.metadata?.name), {
        gracePeriodSeconds: 0,
        preconditions: { uid: hostPod.metadata?.uid },
      });
      this.counts.hostFinalizes++;
    } catch (error) {
      if (!isNotFound(error) && !isConflict(error)) {
        throw new Error(`finalising host pod ${key}`, { cause: error });
      }
    }
    this.options.memory.forget(key);
  }

  private async setDeletionCost(hostPod: V1Pod, key: string, cost: number, log: Logger): Promise<void> {
    const uid = hostPod.metadata?.uid ?? '';
    try {
      await this.options.host.patch(
        podPath(hostPod.metadata?.namespace, hostPod.metadata?.name),
        // The UID makes it a precondition: never a namesake's annotation.
        { metadata: { uid, annotations: { 'controller.kubernetes.io/pod-deletion-cost': String(cost) } } },
        'merge',
      );
      this.counts.deletionCosts++;
      this.options.memory.rememberDeletionCost(key, uid, true);
    } catch (error) {
      if (isNotFound(error) || isConflict(error)) return;
      if (statusCodeOf(error) === 403) {
        // Older RBAC without pods: patch. Mirroring goes on; only the ranking is lost, said once.
        this.options.deletionCostForbidden();
        log.warn(
          { err: messageOf(error) },
          'not allowed to patch host pods: pod-deletion-cost is not set (grant pods: patch, or set pods.deletionCost: null)',
        );
        return;
      }
      throw new Error(`setting the deletion cost of host pod ${key}`, { cause: error });
    }
  }
}
