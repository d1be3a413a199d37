// Writes one virtual node's copies of host Services and EndpointSlices into its remote (for
// reflector.ts): server-side applies with the copy's resourceVersion as precondition, deletes with its
// UID. A same-named Service that is not this Spillway's is never touched (a Warning event on the host
// Service says so, once); one that another virtual node of this host cluster reflects is left to it.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { isConflict, isInvalid, isNotFound } from '../kube/errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { Informer } from '../kube/informer.ts';
import { isOwnedObject, LABEL_VIRTUAL_NODE } from '../ownership.ts';
import { FIELD_MANAGER } from '../pods/copies.ts';
import type { NamespaceEnsurer } from '../pods/execute.ts';
import type { ReflectionScope } from '../pods/references.ts';
import { Warnings } from '../workloads.ts';
import { isHeadless, sameService, sameSlice } from './forge.ts';

export const SLICES = '/apis/discovery.k8s.io/v1';

export interface RemoteCopiesOptions {
  readonly remote: ClusterClient;
  readonly namespaces: NamespaceEnsurer;
  readonly scope: ReflectionScope;
  readonly events: EventRecorder;
  readonly logger: Logger;
  /** The caches of the copies in the remote (every virtual node's of this host cluster). */
  readonly services: Informer<V1Service>;
  readonly slices: Informer<V1EndpointSlice>;
}

export class RemoteCopies {
  private readonly options: RemoteCopiesOptions;
  private readonly warnings: Warnings;
  /** Writes so far (a no-op reconcile adds none). */
  readonly counts = { applies: 0, deletes: 0 };

  constructor(options: RemoteCopiesOptions) {
    this.options = options;
    this.warnings = new Warnings(options.events);
  }

  /**
   * The remote Service made to match. 'conflict': the name is someone else's; 'elsewhere': another
   * virtual node of this host cluster reflects it; 'replaced': deleted to be made again (a change the
   * API does not allow in place: headless or not, ExternalName or not).
   */
  async writeService(
    service: V1Service,
    desired: V1Service,
  ): Promise<'written' | 'conflict' | 'elsewhere' | 'replaced'> {
    const namespace = desired.metadata?.namespace ?? '';
    const name = desired.metadata?.name ?? '';
    const path = `/api/v1/namespaces/${namespace}/services/${name}`;
    let current = this.options.services.get(`${namespace}/${name}`);
    if (current && current.metadata?.labels?.[LABEL_VIRTUAL_NODE] !== this.options.scope.nodeName)
      return 'elsewhere';
    if (current && sameService(current, desired)) return 'written';
    if (
      current &&
      (isHeadless(current) !== isHeadless(desired) || current.spec?.type !== desired.spec?.type)
    ) {
      await this.deleteCopy(current);
      return 'replaced';
    }
    if (!current) {
      await this.options.namespaces.ensure(namespace);
      current = await this.options.remote.get<V1Service>(path).catch((error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      });
      if (current && !isOwnedObject(current.metadata?.labels, this.options.scope.hostClusterName)) {
        this.reportConflict(
          service,
          `Service ${namespace}/${name} exists in the remote cluster and is not this Spillway's; it is not reflected there`,
        );
        return 'conflict';
      }
      if (current && current.metadata?.labels?.[LABEL_VIRTUAL_NODE] !== this.options.scope.nodeName)
        return 'elsewhere';
    }
    await this.apply(path, desired, current?.metadata?.resourceVersion);
    this.warnings.clear(serviceTarget(service));
    return 'written';
  }

  async writeSlice(desired: V1EndpointSlice): Promise<void> {
    const namespace = desired.metadata?.namespace ?? '';
    const name = desired.metadata?.name ?? '';
    const path = `${SLICES}/namespaces/${namespace}/endpointslices/${name}`;
    let current = this.options.slices.get(`${namespace}/${name}`);
    if (current && sameSlice(current, desired)) return;
    if (!current) {
      current = await this.options.remote.get<V1EndpointSlice>(path).catch((error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      });
      // Slice names carry this host cluster's and node's names: one that is not ours is left alone.
      if (current && !isOwnedObject(current.metadata?.labels, this.options.scope.hostClusterName)) return;
    }
    await this.apply(path, desired, current?.metadata?.resourceVersion);
  }

  private async apply(
    path: string,
    desired: V1Service | V1EndpointSlice,
    resourceVersion: string | undefined,
  ) {
    const body = resourceVersion
      ? { ...desired, metadata: { ...desired.metadata, resourceVersion } }
      : desired;
    try {
      await this.options.remote.patch(path, body, 'apply', {
        query: { fieldManager: FIELD_MANAGER, force: true },
      });
      this.counts.applies++;
    } catch (error) {
      const namespace = desired.metadata?.namespace ?? '';
      if (this.options.namespaces.isGone(error)) this.options.namespaces.forget(namespace);
      if (isConflict(error)) throw new Error(`${path} changed while writing it; retrying`, { cause: error });
      if (isInvalid(error)) {
        this.options.logger.warn({ path, err: error }, 'the remote refused a reflected object');
      }
      throw new Error(`reflecting ${path}`, { cause: error });
    }
  }

  /** Deletes a copy of ours, only the one we saw (UID precondition). */
  async deleteCopy(copy: V1Service | V1EndpointSlice): Promise<void> {
    const namespace = copy.metadata?.namespace ?? '';
    const name = copy.metadata?.name ?? '';
    const path =
      'addressType' in copy
        ? `${SLICES}/namespaces/${namespace}/endpointslices/${name}`
        : `/api/v1/namespaces/${namespace}/services/${name}`;
    try {
      await this.options.remote.delete(path, { preconditions: { uid: copy.metadata?.uid } });
      this.counts.deletes++;
    } catch (error) {
      if (!isNotFound(error) && !isConflict(error)) throw new Error(`deleting ${path}`, { cause: error });
    }
  }

  private reportConflict(service: V1Service, message: string): void {
    this.warnings.report(
      serviceTarget(service),
      'ReflectionConflict',
      `${message} (virtual node ${this.options.scope.nodeName})`,
    );
  }
}

function serviceTarget(service: V1Service) {
  return {
    kind: 'Service',
    name: service.metadata?.name ?? '',
    namespace: service.metadata?.namespace,
    uid: service.metadata?.uid,
  };
}
