// The chaos suite's own eyes: a list+watch of one collection on one cluster, built on client-node's
// Watch (not on Spillway's informer, so a bug there cannot hide itself). It reconnects from the last
// resourceVersion after any break, relists on 410 Gone (reporting what vanished meanwhile as deleted),
// and keeps retrying through an API server restart.
import { setTimeout as sleep } from 'node:timers/promises';
import { HttpMethod, type KubeConfig, RequestContext, Watch } from '@kubernetes/client-node';
import { fetch } from 'undici';

export interface Watched {
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

export type WatchType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ListWatcherOptions<T> {
  readonly path: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly onEvent: (type: WatchType, object: T, previous: T | undefined) => void;
}

const keyOf = (o: Watched) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

export class ListWatcher<T extends Watched> {
  readonly objects = new Map<string, T>();
  /** Relists after 410 Gone (the observer's own, not Spillway's). */
  expired = 0;
  private readonly kubeConfig: KubeConfig;
  private readonly options: ListWatcherOptions<T>;
  private resourceVersion = '';
  private controller: AbortController | undefined;
  private stopped = false;
  private synced!: () => void;
  readonly ready = new Promise<void>((resolve) => {
    this.synced = resolve;
  });

  constructor(kubeConfig: KubeConfig, options: ListWatcherOptions<T>) {
    this.kubeConfig = kubeConfig;
    this.options = options;
  }

  start(): Promise<void> {
    void this.run();
    return this.ready;
  }

  stop(): void {
    this.stopped = true;
    this.controller?.abort();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (!this.resourceVersion) await this.relist();
        await this.watchOnce();
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode === 410) {
          this.expired++;
          this.resourceVersion = '';
          continue;
        }
        await sleep(500);
      }
    }
  }

  private async relist(): Promise<void> {
    const url = new URL(this.kubeConfig.getCurrentCluster()?.server + this.options.path);
    if (this.options.labelSelector) url.searchParams.set('labelSelector', this.options.labelSelector);
    if (this.options.fieldSelector) url.searchParams.set('fieldSelector', this.options.fieldSelector);
    const context = new RequestContext(url.toString(), HttpMethod.GET);
    await this.kubeConfig.applySecurityAuthentication(context);
    const response = await fetch(url, {
      headers: context.getHeaders(),
      dispatcher: context.getDispatcher() as never,
      signal: AbortSignal.timeout(30_000),
    });
    if (!response.ok)
      throw Object.assign(new Error(`list ${url}: ${response.status}`), { statusCode: response.status });
    const list = (await response.json()) as { metadata: { resourceVersion: string }; items: T[] };
    const seen = new Set<string>();
    for (const item of list.items) {
      seen.add(keyOf(item));
      this.apply(this.objects.has(keyOf(item)) ? 'MODIFIED' : 'ADDED', item);
    }
    for (const [key, object] of [...this.objects]) if (!seen.has(key)) this.apply('DELETED', object);
    this.resourceVersion = list.metadata.resourceVersion;
    this.synced();
  }

  private apply(type: WatchType, object: T): void {
    const key = keyOf(object);
    const previous = this.objects.get(key);
    if (type === 'DELETED') this.objects.delete(key);
    else this.objects.set(key, object);
    this.options.onEvent(type, object, previous);
  }

  private watchOnce(): Promise<void> {
    return new Promise((resolve, reject) => {
      let failed: Error | undefined;
      void new Watch(this.kubeConfig)
        .watch(
          this.options.path,
          {
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            labelSelector: this.options.labelSelector,
            fieldSelector: this.options.fieldSelector,
          },
          (type: string, object: T & { code?: number }) => {
            if (type === 'ERROR') {
              failed = Object.assign(new Error('watch error'), { statusCode: object.code });
              this.controller?.abort();
              return;
            }
            const version = object.metadata?.resourceVersion;
            if (version) this.resourceVersion = version;
            if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') this.apply(type, object);
          },
          (error: unknown) => ((failed ?? error) ? reject(failed ?? error) : resolve()),
        )
        .then((controller) => {
          this.controller = controller;
          if (this.stopped) controller.abort();
        }, reject);
    });
  }
}
