// Kubernetes Events, as `kubectl describe` shows them. Repeats of the same event (object, reason,
// message) within ten minutes update one Event's count instead of creating new objects, as the
// kubelet's event recorder does. Recording never throws: an event that cannot be written is logged.
// Events for a namespace being deleted are not attempted for a while after the API server has said
// so: deleting a namespace of 10,000 pods otherwise costs 10,000 refused writes on the host's budget.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { boundedLru } from '../lru.ts';
import type { ClusterClient } from './client.ts';
import { isNamespaceTerminating, messageOf } from './errors.ts';

export interface EventTarget {
  readonly kind: string;
  readonly apiVersion?: string;
  readonly name: string;
  readonly namespace?: string;
  readonly uid?: string;
}

export type EventType = 'Normal' | 'Warning';

interface Recorded {
  name: string;
  namespace: string;
  count: number;
  firstTimestamp: string;
}

export class EventRecorder {
  private readonly client: ClusterClient;
  private readonly component: string;
  private readonly host: string | undefined;
  private readonly logger: Logger;
  private readonly recent = boundedLru<string, Recorded>({ limit: 4096, ttl: 10 * 60 * 1000 });
  /** Namespaces the API server said are being deleted; asked again after the TTL (a new one may exist). */
  private readonly terminating = boundedLru<string, true>({ limit: 1024, ttl: 30 * 1000 });
  /** Events not written because their namespace was being deleted. */
  skipped = 0;

  constructor(options: { client: ClusterClient; component: string; host?: string; logger: Logger }) {
    this.client = options.client;
    this.component = options.component;
    this.host = options.host;
    this.logger = options.logger;
  }

  /** Records an event on an object; resolves when written (or given up), never rejects. */
  async record(target: EventTarget, type: EventType, reason: string, message: string): Promise<void> {
    // Node events live in "default", as the kubelet writes them.
    const namespace = target.namespace ?? 'default';
    if (this.terminating.has(namespace)) {
      this.skipped++;
      return;
    }
    const key = `${target.kind}/${namespace}/${target.name}/${target.uid ?? ''}/${reason}/${message}`;
    const now = new Date().toISOString();
    const seen = this.recent.get(key);
    try {
      if (seen) {
        seen.count++;
        await this.client.patch(
          `/api/v1/namespaces/${seen.namespace}/events/${seen.name}`,
          { count: seen.count, lastTimestamp: now },
          'merge',
          { attempts: 2 },
        );
        return;
      }
      const name = `${target.name}.${Date.now().toString(16)}${randomBytes(2).toString('hex')}`;
      await this.client.create(
        `/api/v1/namespaces/${namespace}/events`,
        {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name, namespace },
          involvedObject: {
            kind: target.kind,
            apiVersion: target.apiVersion ?? 'v1',
            name: target.name,
            namespace: target.namespace,
            uid: target.uid,
          },
          type,
          reason,
          message: message.slice(0, 1024),
          count: 1,
          firstTimestamp: now,
          lastTimestamp: now,
          source: { component: this.component, ...(this.host ? { host: this.host } : {}) },
          reportingComponent: this.component,
          reportingInstance: this.host ?? this.component,
        },
        { attempts: 2 },
      );
      this.recent.set(key, { name, namespace, count: 1, firstTimestamp: now });
    } catch (error) {
      this.recent.delete(key);
      if (isNamespaceTerminating(error)) this.terminating.set(namespace, true);
      this.logger.info(
        { reason, object: `${target.kind}/${target.name}`, err: messageOf(error) },
        'could not record event',
      );
    }
  }
}
