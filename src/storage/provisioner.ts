// Spillway as the provisioner of its StorageClasses, for one virtual node (see plan.ts): claims the host
// scheduler placed on this node are made in the remote, bound on the host to volumes pinned to the node,
// and released by their reclaim policy. Keyed by host claim, reconciled whenever the claim, its volume or
// its remote claim changes. Every write has its precondition: creates are idempotent by name, deletes
// carry the UID, the finalizer comes off with the volume's resourceVersion. It also answers the pod
// planner: may a pod's claims be used here (verdict), and as which remote claims (remoteClaim).
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { isAlreadyExists, isConflict, isNotFound } from '../kube/errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import { Informer, keyOf, trimMetadata } from '../kube/informer.ts';
import { isOwnedObject, LABEL_VIRTUAL_NODE, ownedSelector } from '../ownership.ts';
import { ANNOTATION_SOURCE, LABEL_REFLECTED } from '../pods/copies.ts';
import type { NamespaceEnsurer } from '../pods/execute.ts';
import type { WorkloadVerdict } from '../pods/plan-workload.ts';
import { ephemeralClaimName } from '../pods/workload.ts';
import { WorkQueue } from '../queue/workqueue.ts';
import { Warnings } from '../workloads.ts';
import type { HostVolumes } from './host-volumes.ts';
import {
  ANNOTATION_REMOTE_CLAIM,
  FINALIZER_REMOTE_CLAIM,
  LABEL_HOST_CLAIM_UID,
  planStorage,
  remoteClaimOf,
  type StorageAction,
  type StorageContext,
} from './plan.ts';

export interface ProvisionerOptions {
  readonly host: ClusterClient;
  readonly remote: ClusterClient;
  readonly volumes: HostVolumes;
  readonly namespaces: NamespaceEnsurer;
  readonly context: StorageContext;
  /** storage.enabled: off, every claim is refused as before. */
  readonly enabled: boolean;
  readonly events: EventRecorder;
  readonly logger: Logger;
}

const claimsPath = (namespace: string) => `/api/v1/namespaces/${namespace}/persistentvolumeclaims`;

export class VolumeProvisioner {
  private readonly options: ProvisionerOptions;
  private readonly remoteClaims: Informer<V1PersistentVolumeClaim>;
  private readonly queue: WorkQueue;
  /** Host claim key → keys of the remote claims made for it. */
  private readonly bySource = new Map<string, Set<string>>();
  private readonly warnings: Warnings;
  /** Writes so far (tests read them). */
  readonly counts = { remoteClaims: 0, volumes: 0, deletes: 0, releases: 0 };

  constructor(options: ProvisionerOptions) {
    this.options = options;
    this.warnings = new Warnings(options.events);
    const { remote, context, logger } = options;
    this.remoteClaims = new Informer<V1PersistentVolumeClaim>({
      name: `${remote.name}/claims/${context.scope.nodeName}`,
      client: remote,
      path: '/api/v1/persistentvolumeclaims',
      labelSelector: `${ownedSelector(context.scope.hostClusterName)},${LABEL_VIRTUAL_NODE}=${context.scope.nodeName},${LABEL_REFLECTED}=PersistentVolumeClaim`,
      transform: trimMetadata,
      logger,
    });
    this.remoteClaims.on((event, claim, previous) => {
      const key = keyOf(claim);
      const before = previous?.metadata?.annotations?.[ANNOTATION_SOURCE];
      if (before) this.bySource.get(before)?.delete(key);
      const source = claim.metadata?.annotations?.[ANNOTATION_SOURCE];
      if (source && event !== 'delete') {
        let keys = this.bySource.get(source);
        if (!keys) {
          keys = new Set();
          this.bySource.set(source, keys);
        }
        keys.add(key);
      }
      if (source) this.queue.add(source);
    });
    this.queue = new WorkQueue({
      name: `storage/${context.scope.nodeName}`,
      workers: 2,
      logger,
      reconcile: (key) => this.reconcile(key),
    });
  }

  start(signal: AbortSignal): void {
    if (!this.options.enabled) return;
    this.remoteClaims.start(signal);
    this.queue.start(signal);
    const unsubscribe = this.options.volumes.subscribe((key) => this.queue.add(key));
    signal.addEventListener('abort', unsubscribe, { once: true });
    // Volumes and remote claims left from before a restart are looked at once both are listed.
    void Promise.all([this.remoteClaims.ready, this.options.volumes.claims.ready]).then(() => {
      for (const key of this.bySource.keys()) this.queue.add(key);
      for (const claim of this.options.volumes.claims.list()) this.queue.add(keyOf(claim));
    });
  }

  wake(): void {
    this.remoteClaims.wake();
  }

  /** May the pod's claims be used on this node now? A verdict when not (yet). */
  verdict(pod: V1Pod): WorkloadVerdict | undefined {
    const namespace = pod.metadata?.namespace ?? '';
    for (const volume of pod.spec?.volumes ?? []) {
      const claimName =
        volume.persistentVolumeClaim?.claimName ??
        (volume.ephemeral ? ephemeralClaimName(pod.metadata?.name ?? '', volume.name) : undefined);
      if (!claimName) continue;
      const unsupported = (why: string): WorkloadVerdict => ({
        reason: 'UnsupportedVolume',
        message: `volume "${volume.name}": ${why}`,
        outcome: 'never',
      });
      if (!this.options.enabled)
        return unsupported('claims are not provisioned in remote clusters (storage.enabled: false)');
      const waiting = (why: string): WorkloadVerdict => ({
        reason: 'WaitingForVolume',
        message: `volume "${volume.name}": ${why}`,
        outcome: 'wait',
        retryAfterMs: 2000,
      });
      if (!this.options.volumes.synced || !this.remoteClaims.hasSynced)
        return waiting('the claims are not listed yet');
      const claim = this.options.volumes.claim(namespace, claimName);
      if (!claim) return waiting(`claim ${claimName} does not exist yet`);
      const bound = claim.spec?.volumeName;
      if (bound) {
        const remote = remoteClaimOf(this.options.volumes.volume(bound), this.options.context.scope.nodeName);
        if (!remote) {
          return unsupported(
            `claim ${claimName} is bound to volume ${bound}, which is host storage (not provisioned by Spillway for virtual node ${this.options.context.scope.nodeName}); a remote cluster cannot mount it`,
          );
        }
        continue;
      }
      const storageClass = this.options.volumes.storageClass(claim.spec?.storageClassName);
      if (storageClass?.provisioner !== this.options.context.provisioner) {
        return unsupported(
          `claim ${claimName} is of StorageClass "${claim.spec?.storageClassName ?? ''}", whose provisioner is not Spillway's (${this.options.context.provisioner}); a remote cluster cannot mount host storage`,
        );
      }
      return waiting(
        `claim ${claimName} is being provisioned in remote cluster ${this.options.context.remoteName}`,
      );
    }
    return undefined;
  }

  /** The remote claim a host claim is bound as on this node (undefined: it is not). */
  remoteClaim(hostNamespace: string, claimName: string): string | undefined {
    const claim = this.options.volumes.claim(hostNamespace, claimName);
    return remoteClaimOf(
      this.options.volumes.volume(claim?.spec?.volumeName),
      this.options.context.scope.nodeName,
    );
  }

  private async reconcile(key: string): Promise<{ requeueAfter?: number } | undefined> {
    const { volumes, context } = this.options;
    if (!volumes.synced || !this.remoteClaims.hasSynced) return { requeueAfter: 500 };
    const claim = volumes.claims.get(key);
    const uid = claim?.metadata?.uid;
    const remoteClaims = [...(this.bySource.get(key) ?? [])]
      .map((k) => this.remoteClaims.get(k))
      .filter((c): c is V1PersistentVolumeClaim => c !== undefined);
    const mine = volumes
      .volumesOf(key)
      .filter((v) => v.metadata?.labels?.[LABEL_VIRTUAL_NODE] === context.scope.nodeName);
    const actions: StorageAction[] = [];
    const named = new Set<string>();
    // Volumes first: a released one (an earlier claim of this name) may sit beside the current claim.
    for (const volume of mine) {
      const remoteKey = volume.metadata?.annotations?.[ANNOTATION_REMOTE_CLAIM];
      if (remoteKey) named.add(remoteKey);
      const remoteClaim = remoteKey ? this.remoteClaims.get(remoteKey) : undefined;
      const current = volume.spec?.claimRef?.uid === uid ? claim : undefined;
      actions.push(...planStorage({ claim: current, volume, remoteClaim }, context));
    }
    if (!mine.some((v) => v.spec?.claimRef?.uid === uid)) {
      const remoteClaim = remoteClaims.find((c) => c.metadata?.labels?.[LABEL_HOST_CLAIM_UID] === uid);
      const storageClass = volumes.storageClass(claim?.spec?.storageClassName);
      if (remoteClaim) named.add(keyOf(remoteClaim));
      actions.push(...planStorage({ claim, remoteClaim, storageClass }, context));
    }
    // Remote claims no volume and no current claim stands for (a crash between the two creates).
    for (const stray of remoteClaims.filter((c) => !named.has(keyOf(c)))) {
      actions.push(...planStorage({ remoteClaim: stray }, context));
    }
    let requeueAfter: number | undefined;
    for (const action of actions) {
      if (action.kind === 'requeue') requeueAfter = Math.min(requeueAfter ?? action.afterMs, action.afterMs);
      else if ((await this.execute(key, claim, action)) === 'conflict') requeueAfter = 60_000;
    }
    return requeueAfter !== undefined ? { requeueAfter } : undefined;
  }

  private async execute(
    key: string,
    claim: V1PersistentVolumeClaim | undefined,
    action: Exclude<StorageAction, { kind: 'requeue' }>,
  ): Promise<'conflict' | undefined> {
    const { host, remote, namespaces, logger } = this.options;
    switch (action.kind) {
      case 'createRemoteClaim': {
        const namespace = action.claim.metadata?.namespace ?? '';
        await namespaces.ensure(namespace);
        try {
          await remote.create(claimsPath(namespace), action.claim);
          this.counts.remoteClaims++;
          logger.info(
            { claim: key, remote: `${namespace}/${action.claim.metadata?.name}` },
            'provisioning a claim in the remote',
          );
        } catch (error) {
          if (namespaces.isGone(error)) namespaces.forget(namespace);
          if (!isAlreadyExists(error)) throw new Error(`creating remote claim for ${key}`, { cause: error });
          const existing = await remote.get<V1PersistentVolumeClaim>(
            `${claimsPath(namespace)}/${action.claim.metadata?.name}`,
          );
          if (!isOwnedObject(existing.metadata?.labels, this.options.context.scope.hostClusterName)) {
            this.report(
              claim,
              `claim ${namespace}/${action.claim.metadata?.name} exists in the remote cluster and is not this Spillway's; the claim is not provisioned there`,
            );
            return 'conflict';
          }
        }
        return undefined;
      }
      case 'createVolume':
        try {
          await host.create('/api/v1/persistentvolumes', action.volume);
          this.counts.volumes++;
          logger.info(
            { claim: key, volume: action.volume.metadata?.name },
            'bound the claim to a volume pinned to the virtual node',
          );
        } catch (error) {
          if (!isAlreadyExists(error))
            throw new Error(`creating the volume of claim ${key}`, { cause: error });
        }
        return undefined;
      case 'deleteRemoteClaim': {
        logger.info(
          { claim: key, remote: `${action.target.namespace}/${action.target.name}` },
          `deleting remote claim: ${action.why}`,
        );
        try {
          await remote.delete(`${claimsPath(action.target.namespace ?? '')}/${action.target.name}`, {
            preconditions: { uid: action.target.uid },
          });
          this.counts.deletes++;
        } catch (error) {
          if (!isNotFound(error) && !isConflict(error))
            throw new Error(`deleting remote claim of ${key}`, { cause: error });
        }
        return undefined;
      }
      case 'releaseVolume':
        await this.release(action.target, action.resourceVersion, action.delete);
        return undefined;
    }
  }

  /** Takes our finalizer off the volume (resourceVersion precondition), then deletes it unless it is kept. */
  private async release(
    target: { name: string; uid: string },
    resourceVersion: string,
    remove: boolean,
  ): Promise<void> {
    const path = `/api/v1/persistentvolumes/${target.name}`;
    const volume = this.options.volumes.volume(target.name);
    const finalizers = (volume?.metadata?.finalizers ?? []).filter((f) => f !== FINALIZER_REMOTE_CLAIM);
    try {
      if (volume?.metadata?.finalizers?.includes(FINALIZER_REMOTE_CLAIM)) {
        await this.options.host.patch(
          path,
          { metadata: { uid: target.uid, resourceVersion, finalizers } },
          'merge',
        );
      }
      if (remove) await this.options.host.delete(path, { preconditions: { uid: target.uid } });
      this.counts.releases++;
    } catch (error) {
      if (isNotFound(error)) return;
      if (isConflict(error))
        throw new Error(`volume ${target.name} changed while releasing it; retrying`, { cause: error });
      throw new Error(`releasing volume ${target.name}`, { cause: error });
    }
  }

  private report(claim: V1PersistentVolumeClaim | undefined, message: string): void {
    if (!claim) return;
    this.options.logger.warn({ claim: keyOf(claim) }, message);
    this.warnings.report(
      {
        kind: 'PersistentVolumeClaim',
        name: claim.metadata?.name ?? '',
        namespace: claim.metadata?.namespace,
        uid: claim.metadata?.uid,
      },
      'ProvisioningFailed',
      message,
    );
  }
}
