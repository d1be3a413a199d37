// The host cluster's claims, Spillway's PersistentVolumes and the StorageClasses, watched once per host
// client and shared by every remote's provisioner and pod planner.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { Informer, type InformerEvent, keyOf, trimMetadata } from '../kube/informer.ts';
import { ownedSelector } from '../ownership.ts';

/** Set by the scheduler on a claim of a WaitForFirstConsumer class: the node its pod goes to. */
export const ANNOTATION_SELECTED_NODE = 'volume.kubernetes.io/selected-node';

export type ClaimListener = (claimKey: string, event: InformerEvent) => void;

export class HostVolumes {
  readonly claims: Informer<V1PersistentVolumeClaim>;
  readonly volumes: Informer<V1PersistentVolume>;
  readonly classes: Informer<V1StorageClass>;
  private readonly listeners = new Set<ClaimListener>();
  /** Claim key → names of Spillway's volumes whose claimRef names it. */
  private readonly volumesByClaim = new Map<string, Set<string>>();
  private started = false;

  constructor(options: { host: ClusterClient; hostClusterName: string; logger: Logger }) {
    const { host, logger } = options;
    this.claims = new Informer<V1PersistentVolumeClaim>({
      name: 'host/persistentvolumeclaims',
      client: host,
      path: '/api/v1/persistentvolumeclaims',
      transform: trimMetadata,
      logger,
    });
    this.volumes = new Informer<V1PersistentVolume>({
      name: 'host/persistentvolumes',
      client: host,
      path: '/api/v1/persistentvolumes',
      // Only Spillway's own volumes: those it made for claims it provisioned in a remote.
      labelSelector: ownedSelector(options.hostClusterName),
      transform: trimMetadata,
      logger,
    });
    this.classes = new Informer<V1StorageClass>({
      name: 'host/storageclasses',
      client: host,
      path: '/apis/storage.k8s.io/v1/storageclasses',
      transform: trimMetadata,
      logger,
    });
    this.claims.on((event, claim) => this.emit(keyOf(claim), event));
    this.volumes.on((event, volume, previous) => {
      const name = volume.metadata?.name ?? '';
      const before = claimKeyOf(previous);
      if (before) this.volumesByClaim.get(before)?.delete(name);
      if (before && this.volumesByClaim.get(before)?.size === 0) this.volumesByClaim.delete(before);
      const key = claimKeyOf(volume);
      if (key && event !== 'delete') {
        let names = this.volumesByClaim.get(key);
        if (!names) {
          names = new Set();
          this.volumesByClaim.set(key, names);
        }
        names.add(name);
      }
      if (key) this.emit(key, event);
    });
  }

  start(signal: AbortSignal): void {
    if (this.started) return;
    this.started = true;
    this.claims.start(signal);
    this.volumes.start(signal);
    this.classes.start(signal);
  }

  get synced(): boolean {
    return this.claims.hasSynced && this.volumes.hasSynced && this.classes.hasSynced;
  }

  claim(namespace: string, name: string): V1PersistentVolumeClaim | undefined {
    return this.claims.get(`${namespace}/${name}`);
  }

  volume(name: string | undefined): V1PersistentVolume | undefined {
    return name ? this.volumes.get(name) : undefined;
  }

  /** Spillway's volumes whose claimRef names this claim (a released one may linger beside a new one). */
  volumesOf(claimKey: string): V1PersistentVolume[] {
    return [...(this.volumesByClaim.get(claimKey) ?? [])]
      .map((name) => this.volumes.get(name))
      .filter((v): v is V1PersistentVolume => v !== undefined);
  }

  storageClass(name: string | undefined): V1StorageClass | undefined {
    return name ? this.classes.get(name) : undefined;
  }

  /** Called with a claim's key when it, or the volume bound to it, changes; returns the unsubscribe function. */
  subscribe(listener: ClaimListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(key: string, event: InformerEvent): void {
    for (const listener of this.listeners) listener(key, event);
  }
}

function claimKeyOf(volume: V1PersistentVolume | undefined): string | undefined {
  const ref = volume?.spec?.claimRef;
  return ref?.namespace && ref.name ? `${ref.namespace}/${ref.name}` : undefined;
}
