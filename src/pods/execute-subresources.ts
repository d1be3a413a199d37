// Ephemeral containers and in-place resizes of a delegate, through its `ephemeralcontainers` and
// `resize` subresources (for execute-workload.ts): strategic merge patches with the delegate's UID and
// resourceVersion as preconditions. A conflict means the cache was behind; a refusal is said once as a
// Warning event on the host pod and not retried until the host pod changes again.
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { isConflict, isForbidden, isInvalid, isNotFound, messageOf, statusCodeOf } from '../kube/errors.ts';
import type { EventType } from '../kube/events.ts';
import type { ClusterWrites } from './execute.ts';
import type { PodMemory } from './memory.ts';
import type { ObjectRef, PodAction } from './plan.ts';

export interface DelegateSubresourcesOptions {
  readonly remote: ClusterWrites;
  readonly memory: PodMemory;
  readonly event: (pod: V1Pod, type: EventType, reason: string, message: string) => Promise<void>;
}

type SubresourceAction = Extract<PodAction, { kind: 'addEphemeralContainers' | 'resizeDelegate' }>;

const podPath = (namespace: string, name: string) => `/api/v1/namespaces/${namespace}/pods/${name}`;

export class DelegateSubresources {
  private readonly options: DelegateSubresourcesOptions;
  private readonly counts: { ephemeralContainerAdds: number; resizes: number };

  constructor(
    options: DelegateSubresourcesOptions,
    counts: { ephemeralContainerAdds: number; resizes: number },
  ) {
    this.options = options;
    this.counts = counts;
  }

  /** Applies one of the planner's subresource actions to the delegate. */
  async apply(hostPod: V1Pod, key: string, action: SubresourceAction, log: Logger): Promise<void> {
    const { target, resourceVersion } = action;
    if (action.kind === 'addEphemeralContainers') {
      const names = action.containers.map((c) => c.name).join(', ');
      log.info({ containers: names }, 'adding ephemeral containers to the delegate');
      const body = { spec: { ephemeralContainers: action.containers } };
      const what = `ephemeral container(s) ${names}`;
      const reason = 'EphemeralContainerRejected';
      if (
        await this.subresource(
          hostPod,
          key,
          target,
          'ephemeralcontainers',
          resourceVersion,
          body,
          reason,
          what,
        )
      )
        this.counts.ephemeralContainerAdds++;
      return;
    }
    log.info({ containers: action.containers.map((c) => c.name) }, 'resizing the delegate');
    const list = (init: boolean) =>
      action.containers.filter((c) => c.init === init).map((c) => ({ name: c.name, resources: c.resources }));
    const spec: Record<string, unknown> = {};
    if (list(false).length > 0) spec.containers = list(false);
    if (list(true).length > 0) spec.initContainers = list(true);
    if (
      await this.subresource(
        hostPod,
        key,
        target,
        'resize',
        resourceVersion,
        { spec },
        'ResizeRejected',
        'the resize',
      )
    )
      this.counts.resizes++;
  }

  /**
   * A strategic merge patch of a delegate subresource with its resourceVersion. A conflict means the
   * cache was behind (its update plans this again); a refusal is said once on the host pod and not
   * retried until the pod changes again.
   */
  private async subresource(
    hostPod: V1Pod,
    key: string,
    target: ObjectRef,
    subresource: string,
    resourceVersion: string,
    body: Record<string, unknown>,
    reason: string,
    what: string,
  ): Promise<boolean> {
    try {
      await this.options.remote.patch(
        `${podPath(target.namespace, target.name)}/${subresource}`,
        { metadata: { uid: target.uid, resourceVersion }, ...body },
        'strategic',
      );
      return true;
    } catch (error) {
      if (isConflict(error) || isNotFound(error)) return false;
      if (isInvalid(error) || isForbidden(error) || statusCodeOf(error) === 400) {
        await this.options.event(
          hostPod,
          'Warning',
          reason,
          `remote cluster refused ${what} on delegate ${target.namespace}/${target.name}: ${messageOf(error)}`,
        );
        this.options.memory.markSpecInSync(
          key,
          hostPod.metadata?.uid ?? '',
          hostPod.metadata?.resourceVersion ?? '',
          resourceVersion,
        );
        return false;
      }
      throw new Error(`patching ${subresource} of delegate ${target.namespace}/${target.name}`, {
        cause: error,
      });
    }
  }
}
