// Remote events about delegates (scheduling, pulling, probes, back-off, eviction) appear as events on
// their host pods, so `kubectl describe pod` in the host tells the whole story. Only events newer than
// Spillway's start are mirrored; repeats update one host event's count.
//
// Bounded, as a kubelet's event recorder is: events are streamed, not cached (only a bounded memory of
// the last count seen per event); each host pod may have at most `perPodBurst` distinct events
// mirrored at once, then one per `perPodRefillSeconds`, and a repeat of one at most every
// `repeatSeconds`; all of them together at most `perSecond` (so events never crowd status writes out
// of the host client's rate limit); and at most `maxPending` wait. Events over those bounds are
// dropped and counted, with a warning at most once a minute: events are advisory in Kubernetes, and
// the host status (which carries the reason) is never dropped.
import type { CoreV1Event, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import type { EventRecorder } from '../kube/events.ts';
import { Informer } from '../kube/informer.ts';
import { boundedLru } from '../lru.ts';
import { TokenBucket } from '../queue/token-bucket.ts';
import { ANNOTATION_HOST_NAME, ANNOTATION_HOST_NAMESPACE } from './forge.ts';

export interface EventMirrorLimits {
  /** Events written per second, all pods together. */
  readonly perSecond: number;
  readonly burst: number;
  /** Distinct events one host pod may get at once, then one every perPodRefillSeconds. */
  readonly perPodBurst: number;
  readonly perPodRefillSeconds: number;
  /**
   * A repeat of an event already mirrored (the remote counted it again) is mirrored at most this
   * often; repeats in between are folded into the next (a failing probe repeats every few seconds).
   */
  readonly repeatSeconds: number;
  /** Events waiting for the rate at most; more are dropped. */
  readonly maxPending: number;
}

export const DEFAULT_EVENT_MIRROR_LIMITS: EventMirrorLimits = {
  perSecond: 10,
  burst: 50,
  // As the kubelet's own event recorder (client-go's spam filter allows 25 at once per object).
  perPodBurst: 25,
  perPodRefillSeconds: 10,
  repeatSeconds: 30,
  maxPending: 1000,
};

export interface RemoteEventMirrorOptions {
  readonly remote: ClusterClient;
  readonly delegates: Informer<V1Pod>;
  readonly hostPods: Informer<V1Pod>;
  readonly events: EventRecorder;
  readonly logger: Logger;
  readonly limits?: Partial<EventMirrorLimits>;
}

export interface SlimEvent {
  metadata: { name?: string; namespace?: string };
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

function slim(event: CoreV1Event): SlimEvent {
  return {
    metadata: { name: event.metadata?.name, namespace: event.metadata?.namespace },
    involved: {
      namespace: event.involvedObject.namespace,
      name: event.involvedObject.name,
      uid: event.involvedObject.uid,
    },
    type: event.type ?? 'Normal',
    reason: event.reason ?? '',
    message: event.message ?? '',
    count: event.count ?? event.series?.count ?? 1,
  };
}

export type Admission = 'accepted' | 'unchanged' | 'folded' | 'dropped';

/**
 * Which remote events may be mirrored: not one already mirrored as it is (the same count and
 * message); a repeat (a higher count) at most every `repeatSeconds`; a new event within its pod's
 * budget; nothing beyond `maxPending` waiting. Memory is bounded too (least recently used events and
 * pods are forgotten first).
 */
export class EventThrottle {
  private readonly limits: EventMirrorLimits;
  /** Per event: the version last offered and when a version of it was last let through. */
  private readonly seen = boundedLru<string, { version: string; admittedAt: number }>({ limit: 8192 });
  private readonly perPod = boundedLru<string, TokenBucket>({ limit: 16384 });

  constructor(limits: EventMirrorLimits) {
    this.limits = limits;
  }

  admit(event: SlimEvent, pending: number, now = Date.now()): Admission {
    const id = `${event.metadata.namespace}/${event.metadata.name}`;
    const version = `${event.count}/${event.message}`;
    const seen = this.seen.get(id);
    if (seen?.version === version) return 'unchanged';
    if (pending >= this.limits.maxPending) return 'dropped';
    if (seen) {
      seen.version = version;
      if (now - seen.admittedAt < this.limits.repeatSeconds * 1000) return 'folded';
      seen.admittedAt = now;
      return 'accepted';
    }
    const podKey = event.involved.uid ?? `${event.involved.namespace}/${event.involved.name}`;
    let bucket = this.perPod.get(podKey);
    if (!bucket) {
      bucket = new TokenBucket(1 / this.limits.perPodRefillSeconds, this.limits.perPodBurst, now);
      this.perPod.set(podKey, bucket);
    }
    if (!bucket.take(now)) return 'dropped';
    this.seen.set(id, { version, admittedAt: now });
    return 'accepted';
  }
}

export class RemoteEventMirror {
  private readonly options: RemoteEventMirrorOptions;
  private readonly limits: EventMirrorLimits;
  private readonly informer: Informer<CoreV1Event, SlimEvent>;
  private readonly startedAt = Date.now();
  private readonly throttle: EventThrottle;
  private readonly rate: TokenBucket;
  private pending: SlimEvent[] = [];
  private pumping = false;
  private stopped = false;
  private lastDropWarning = 0;
  /** Events mirrored and dropped so far (tests and metrics). */
  mirrored = 0;
  dropped = 0;

  constructor(options: RemoteEventMirrorOptions) {
    this.options = options;
    this.limits = { ...DEFAULT_EVENT_MIRROR_LIMITS, ...options.limits };
    this.rate = new TokenBucket(this.limits.perSecond, this.limits.burst);
    this.throttle = new EventThrottle(this.limits);
    this.informer = new Informer<CoreV1Event, SlimEvent>({
      name: `${options.remote.name}/events`,
      client: options.remote,
      path: '/api/v1/events',
      fieldSelector: 'involvedObject.kind=Pod',
      // Only recent events about our delegates are of interest, and none is kept.
      filter: (event) => lastSeen(event) >= this.startedAt - 5_000 && this.delegateOf(event) !== undefined,
      transform: slim,
      cache: false,
      logger: options.logger,
    });
    this.informer.on((_kind, event) => this.offer(event));
  }

  start(signal: AbortSignal): void {
    this.informer.start(signal);
    signal.addEventListener(
      'abort',
      () => {
        this.stopped = true;
        this.pending = [];
      },
      { once: true },
    );
  }

  /** Events waiting to be written. */
  get backlog(): number {
    return this.pending.length;
  }

  private delegateOf(event: CoreV1Event): V1Pod | undefined {
    const delegate = this.options.delegates.get(
      `${event.involvedObject.namespace}/${event.involvedObject.name}`,
    );
    if (!delegate) return undefined;
    if (event.involvedObject.uid && event.involvedObject.uid !== delegate.metadata?.uid) return undefined;
    return delegate;
  }

  private offer(event: SlimEvent): void {
    if (this.stopped) return;
    const admission = this.throttle.admit(event, this.pending.length);
    if (admission === 'unchanged' || admission === 'folded') return;
    if (admission === 'dropped') {
      this.drop();
      return;
    }
    this.pending.push(event);
    void this.pump();
  }

  private drop(): void {
    this.dropped++;
    const now = Date.now();
    if (now - this.lastDropWarning < 60_000) return;
    this.lastDropWarning = now;
    this.options.logger.warn(
      { remote: this.options.remote.name, dropped: this.dropped, limits: this.limits },
      'remote events arrive faster than they may be mirrored; dropping some',
    );
  }

  /** Writes pending events one at a time, at the global rate. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.stopped && this.pending.length > 0) {
        const waitMs = this.rate.waitMs();
        if (waitMs > 0) {
          await new Promise((resolve) => setTimeout(resolve, waitMs).unref());
          continue;
        }
        this.rate.take();
        const event = this.pending.shift() as SlimEvent;
        await this.mirror(event);
      }
    } finally {
      this.pumping = false;
    }
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
