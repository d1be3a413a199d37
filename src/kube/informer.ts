// A list+watch cache of one kind of object, sturdier than client-node's ListWatch: paginated lists,
// watches with bookmarks and a server-side timeout, a relist on 410 Gone, exponential backoff with
// jitter on every failure (never a hot loop, never giving up), and a transform that trims what is
// kept, so large clusters fit in memory. Handlers only learn which key changed and take it from here.
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { relisted, watchStarted } from '../metrics/instruments.ts';
import type { ClusterClient } from './client.ts';
import { isGone, isTooManyRequests, messageOf, retryAfterSecondsOf } from './errors.ts';

export interface KubeObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; uid?: string };
}

export type InformerEvent = 'add' | 'update' | 'delete';
export type InformerHandler<S> = (event: InformerEvent, object: S, previous: S | undefined) => void;

export interface InformerOptions<T extends KubeObject, S extends KubeObject> {
  readonly name: string;
  readonly client: ClusterClient;
  /** Collection path, e.g. `/api/v1/pods` or `/api/v1/namespaces/x/secrets`. */
  readonly path: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** What to keep of each object (drop managedFields and everything reconcile does not read). */
  readonly transform?: (object: T) => S;
  /** Objects to keep at all; others are neither cached nor reported (evaluated on every event). */
  readonly filter?: (object: T) => boolean;
  readonly logger: Logger;
  readonly pageSize?: number;
  /**
   * false: a stream of objects, not a cache: handlers see every listed and watched object as an
   * `add` and nothing is kept (events to mirror, where keeping them would grow with every event).
   */
  readonly cache?: boolean;
  /**
   * Called after a relist that was not the first (after 410 Gone, or a watch that could not resume):
   * the events in between were not seen one by one, so whoever relies on them may look at everything.
   */
  readonly onRelisted?: () => void;
}

interface ListResponse<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: T[];
}

export function keyOf(object: KubeObject): string {
  const { namespace, name } = object.metadata ?? {};
  return namespace ? `${namespace}/${name}` : (name ?? '');
}

/** Drops the fields no reconcile reads, which are most of an object's bytes. */
export function trimMetadata<T extends KubeObject>(object: T): T {
  const metadata = (object as { metadata?: Record<string, unknown> }).metadata;
  if (metadata && 'managedFields' in metadata) {
    const { managedFields: _dropped, ...rest } = metadata;
    return { ...object, metadata: rest };
  }
  return object;
}

/** How long a watch event may take to arrive once written: a cache that streams is current up to then. */
const WATCH_DELIVERY_MS = 2_000;

export class Informer<T extends KubeObject, S extends KubeObject = T> {
  readonly name: string;
  readonly ready: Promise<void>;
  private readonly options: InformerOptions<T, S>;
  private readonly cache = new Map<string, S>();
  private readonly handlers: InformerHandler<S>[] = [];
  private resourceVersion = '';
  private synced = false;
  private markReady!: () => void;
  private started = false;
  private backoff: AbortController | undefined;
  private established = false;
  /** When the last complete list started: every change before it is in the cache. */
  private listedFrom = 0;
  /** When the watch now streaming was established (undefined: no watch streams). */
  private watchingSince: number | undefined;
  /** Times the watch connection was (re)established; exposed for health checks and tests. */
  watchesStarted = 0;
  relists = 0;

  constructor(options: InformerOptions<T, S>) {
    if (!options.path.startsWith('/')) throw new Error(`informer ${options.name}: path must start with /`);
    this.options = options;
    this.name = options.name;
    this.ready = new Promise((resolve) => {
      this.markReady = resolve;
    });
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /**
   * The latest moment up to which every change is in the cache: the start of the last complete list,
   * or, while a watch streams, a moment ago (its events take a little while to arrive). A write made
   * after it may not show yet, so its absence proves nothing (a watch broken by an API server restart
   * misses a create until it resumes).
   */
  currentThrough(now = Date.now()): number {
    const watching = this.watchingSince === undefined ? 0 : now - WATCH_DELIVERY_MS;
    return Math.max(this.listedFrom, watching);
  }

  on(handler: InformerHandler<S>): void {
    this.handlers.push(handler);
  }

  get(key: string): S | undefined {
    return this.cache.get(key);
  }

  list(): S[] {
    return [...this.cache.values()];
  }

  get size(): number {
    return this.cache.size;
  }

  /** Runs until the signal aborts; never throws. */
  start(signal: AbortSignal): void {
    if (this.started) throw new Error(`informer ${this.name} already started`);
    this.started = true;
    void this.run(signal);
  }

  private emit(event: InformerEvent, object: S, previous: S | undefined): void {
    for (const handler of this.handlers) {
      try {
        handler(event, object, previous);
      } catch (error) {
        this.options.logger.error({ informer: this.name, err: messageOf(error) }, 'informer handler threw');
      }
    }
  }

  private store(raw: T): void {
    if (this.options.filter && !this.options.filter(raw)) {
      this.remove(raw);
      return;
    }
    const object = this.options.transform ? this.options.transform(raw) : (raw as unknown as S);
    if (this.options.cache === false) {
      this.emit('add', object, undefined);
      return;
    }
    const key = keyOf(raw);
    const previous = this.cache.get(key);
    this.cache.set(key, object);
    this.emit(previous ? 'update' : 'add', object, previous);
  }

  private remove(raw: KubeObject): void {
    const key = keyOf(raw);
    const previous = this.cache.get(key);
    if (!previous) return;
    this.cache.delete(key);
    this.emit('delete', previous, previous);
  }

  /**
   * Cuts a back-off short: the cluster answers again (its health probe says so), so the watch need not
   * wait out a delay that grew during the outage.
   */
  wake(): void {
    this.backoff?.abort();
  }

  private async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    let expiredInARow = 0;
    while (!signal.aborted) {
      const started = Date.now();
      let receivedEvents = false;
      this.established = false;
      try {
        if (!this.resourceVersion) await this.relist(signal);
        receivedEvents = await this.watchOnce(signal);
        failures = 0;
        expiredInARow = 0;
      } catch (error) {
        if (signal.aborted) return;
        if (isGone(error)) {
          // 410: the history behind our resourceVersion was compacted away. Not a failure: relist now
          // (a few times in a row; beyond that it is one, and backs off like any other).
          this.resourceVersion = '';
          if (++expiredInARow <= 3) {
            this.options.logger.info({ informer: this.name }, 'watch expired (410); relisting');
            continue;
          }
        }
        // A watch that served for a while and then broke (an idle stream timed out, a proxy closed it)
        // is a reconnect, not a failure: watch again at once from where it stopped.
        const longLived = Date.now() - started > 60_000 && this.resourceVersion !== '';
        if (longLived && !isGone(error)) {
          this.options.logger.debug(
            { informer: this.name, err: messageOf(error) },
            'watch ended; reconnecting',
          );
          continue;
        }
        if (isTooManyRequests(error)) {
          // Throttled (API Priority and Fairness): the server says when to come back; that is no
          // failure, and must not grow a back-off that outlasts the throttling.
          const waitMs = Math.max(500, (retryAfterSecondsOf(error) ?? 1) * 1000) * (0.75 + Math.random() / 2);
          await this.pause(waitMs, signal);
          continue;
        }
        // A watch that was established and then broke (its API server restarting) starts the count again.
        if (this.established) failures = 0;
        failures++;
        this.options.logger.info(
          { informer: this.name, cluster: this.options.client.name, failures, err: messageOf(error) },
          'list/watch failed; backing off',
        );
      }
      // A watch that ends at once without events must not turn into a hot loop of re-watches.
      const quickEnd = Date.now() - started < 1000 && !receivedEvents;
      if (failures > 0 || quickEnd) {
        const backoffMs = Math.min(30_000, 500 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random());
        await this.pause(backoffMs, signal);
      }
    }
  }

  /** Sleeps, unless the signal aborts or wake() is called. */
  private async pause(ms: number, signal: AbortSignal): Promise<void> {
    this.backoff = new AbortController();
    await sleep(ms, undefined, { signal: AbortSignal.any([signal, this.backoff.signal]) }).catch(() => {});
    this.backoff = undefined;
  }

  private async relist(signal: AbortSignal): Promise<void> {
    const startedAt = Date.now();
    const seen = new Set<string>();
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.options.client.get<ListResponse<T>>(this.options.path, {
        query: {
          labelSelector: this.options.labelSelector,
          fieldSelector: this.options.fieldSelector,
          limit: this.options.pageSize ?? 500,
          continue: continueToken,
        },
        signal,
        attempts: 1,
      });
      for (const item of page.items ?? []) {
        seen.add(keyOf(item));
        const previous = this.cache.get(keyOf(item));
        if (previous?.metadata?.resourceVersion !== item.metadata?.resourceVersion) this.store(item);
      }
      continueToken = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
    } while (continueToken);
    for (const [key, object] of [...this.cache]) {
      if (!seen.has(key)) this.remove(object);
    }
    this.resourceVersion = resourceVersion;
    this.listedFrom = startedAt;
    this.relists++;
    relisted(this.options.client.name, this.name);
    if (!this.synced) {
      this.synced = true;
      this.markReady();
    } else {
      this.options.onRelisted?.();
    }
  }

  /** One watch connection; resolves when the server ends it, rejects on failure. Returns whether events came. */
  private async watchOnce(signal: AbortSignal): Promise<boolean> {
    const timeoutSeconds = 300 + Math.floor(Math.random() * 300);
    let receivedEvents = false;
    try {
      const response = await this.options.client.stream(this.options.path, {
        query: {
          watch: true,
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds,
          labelSelector: this.options.labelSelector,
          fieldSelector: this.options.fieldSelector,
        },
        // The server ends the watch after timeoutSeconds and sends bookmarks meanwhile; silence
        // well past that is a dead connection.
        idleTimeoutMs: (timeoutSeconds + 60) * 1000,
        signal,
      });
      this.watchesStarted++;
      // The server answered: whatever ends this watch, earlier failures are behind us.
      this.established = true;
      this.watchingSince = Date.now();
      watchStarted(this.options.client.name, this.name);
      for await (const line of lines(response)) {
        receivedEvents = true;
        const event = JSON.parse(line) as { type: string; object: T & { code?: number } };
        if (event.type === 'ERROR') {
          if (event.object.code === 410) this.resourceVersion = '';
          const status = event.object as { message?: string; reason?: string };
          throw Object.assign(
            new Error(`watch error: ${status.reason ?? ''} ${status.message ?? ''}`.trim()),
            { statusCode: event.object.code },
          );
        }
        const version = event.object.metadata?.resourceVersion;
        if (version) this.resourceVersion = version;
        if (event.type === 'ADDED' || event.type === 'MODIFIED') this.store(event.object);
        else if (event.type === 'DELETED') this.remove(event.object);
      }
      return receivedEvents;
    } catch (error) {
      if (signal.aborted) return false;
      throw error;
    } finally {
      this.watchingSince = undefined;
    }
  }
}

/** The non-empty lines of a response, decoded as UTF-8 across chunk boundaries. */
async function* lines(response: AsyncIterable<Buffer>): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  for await (const chunk of response) {
    const text = rest + decoder.write(chunk);
    let start = 0;
    for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n', start)) {
      if (end > start) yield text.slice(start, end);
      start = end + 1;
    }
    rest = text.slice(start);
  }
  rest += decoder.end();
  if (rest.trim()) yield rest;
}
