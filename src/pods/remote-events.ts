// Remote events about delegates (scheduling, pulling, probes, back-off, eviction) appear as events on
// their host pods, so `kubectl describe pod` in the host tells the whole story. Only events newer than
// Spillway's start are mirrored; repeats update one host event's count.
import type { CoreV1Event, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import type { EventRecorder } from '../kube/events.ts';
import { Informer } from '../kube/informer.ts';
import { ANNOTATION_HOST_NAME, ANNOTATION_HOST_NAMESPACE } from './forge.ts';

export interface RemoteEventMirrorOptions {
  readonly remote: ClusterClient;
  readonly delegates: Informer<V1Pod>;
  readonly hostPods: Informer<V1Pod>;
  readonly events: EventRecorder;
  readonly logger: Logger;
}

interface SlimEvent {
  metadata: { name?: string; namespace?: string; resourceVersion?: string };
  involved: { namespace?: string; name?: string; uid?: string };
  type: string;
  reason: string;
  message: string;
  count: number;
}

function lastSeen(event: CoreV1Event): number {
  const when =
    event.lastTimestamp ?? event.eventTime ?? event.series?.lastObservedTime ?? event.firstTimestamp;
  return when ? Date.parse(String(when)) : 0;
}

export class RemoteEventMirror {
  private readonly options: RemoteEventMirrorOptions;
  private readonly informer: Informer<CoreV1Event, SlimEvent>;
  private readonly startedAt = Date.now();
  /** Events mirrored so far (tests and metrics). */
  mirrored = 0;

  constructor(options: RemoteEventMirrorOptions) {
    this.options = options;
    this.informer = new Informer<CoreV1Event, SlimEvent>({
      name: `${options.remote.name}/events`,
      client: options.remote,
      path: '/api/v1/events',
      fieldSelector: 'involvedObject.kind=Pod',
      // Only events about our delegates, and only recent ones, are of interest; nothing else is kept.
      filter: (event) => lastSeen(event) >= this.startedAt - 5_000 && this.delegateOf(event) !== undefined,
      transform: (event) => ({
        metadata: {
          name: event.metadata?.name,
          namespace: event.metadata?.namespace,
          resourceVersion: event.metadata?.resourceVersion,
        },
        involved: {
          namespace: event.involvedObject.namespace,
          name: event.involvedObject.name,
          uid: event.involvedObject.uid,
        },
        type: event.type ?? 'Normal',
        reason: event.reason ?? '',
        message: event.message ?? '',
        count: event.count ?? event.series?.count ?? 1,
      }),
      logger: options.logger,
    });
    this.informer.on((kind, event, previous) => {
      if (kind === 'delete') return;
      if (
        kind === 'update' &&
        previous &&
        previous.count === event.count &&
        previous.message === event.message
      )
        return;
      void this.mirror(event);
    });
  }

  start(signal: AbortSignal): void {
    this.informer.start(signal);
  }

  private delegateOf(event: CoreV1Event): V1Pod | undefined {
    const delegate = this.options.delegates.get(
      `${event.involvedObject.namespace}/${event.involvedObject.name}`,
    );
    if (!delegate) return undefined;
    if (event.involvedObject.uid && event.involvedObject.uid !== delegate.metadata?.uid) return undefined;
    return delegate;
  }

  private async mirror(event: SlimEvent): Promise<void> {
    const delegate = this.options.delegates.get(`${event.involved.namespace}/${event.involved.name}`);
    const namespace = delegate?.metadata?.annotations?.[ANNOTATION_HOST_NAMESPACE];
    const name = delegate?.metadata?.annotations?.[ANNOTATION_HOST_NAME];
    const hostPod = namespace && name ? this.options.hostPods.get(`${namespace}/${name}`) : undefined;
    if (!hostPod) return;
    this.mirrored++;
    await this.options.events.record(
      { kind: 'Pod', name: name as string, namespace, uid: hostPod.metadata?.uid },
      event.type === 'Warning' ? 'Warning' : 'Normal',
      event.reason,
      `${event.message} (remote cluster ${this.options.remote.name})`,
    );
  }
}
