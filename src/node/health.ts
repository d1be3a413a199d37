// Probes a remote API server on the heartbeat lane (never queued behind pod work) and says whether the
// remote is reachable, still being connected to, or unreachable for longer than the grace period.
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { isTooManyRequests, messageOf } from '../kube/errors.ts';
import type { RemoteReachability } from './conditions.ts';

export interface RemoteHealthOptions {
  readonly client: ClusterClient;
  readonly logger: Logger;
  readonly intervalMs: number;
  readonly graceMs: number;
  /** Called whenever the reachability state or the remote's version changes. */
  readonly onChange: () => void;
  /** Called when a probe succeeds after one or more failed (however short the outage was). */
  readonly onRecovered?: () => void;
}

export class RemoteHealth {
  private readonly options: RemoteHealthOptions;
  private readonly startedAt = Date.now();
  private lastSuccess: number | undefined;
  private unreachableSince: number | undefined;
  private lastError: string | undefined;
  private lastState: RemoteReachability['state'] | undefined;
  /** The remote's Kubernetes version (gitVersion), once reached. */
  version: string | undefined;
  /** Whether a first probe has finished (either way); until then nothing is known. */
  probed = false;

  constructor(options: RemoteHealthOptions) {
    if (!(options.intervalMs > 0) || !(options.graceMs > 0))
      throw new Error('remote health: bad interval or grace');
    this.options = options;
  }

  reachability(now = Date.now()): RemoteReachability {
    const { graceMs } = this.options;
    if (this.unreachableSince === undefined && this.lastSuccess !== undefined) return { state: 'reachable' };
    const failingSince = this.unreachableSince ?? this.startedAt;
    if (now - failingSince < graceMs && this.lastSuccess !== undefined) return { state: 'reachable' };
    if (now - failingSince < graceMs) return { state: 'connecting', error: this.lastError };
    return { state: 'unreachable', since: new Date(failingSince).toISOString(), error: this.lastError };
  }

  start(signal: AbortSignal): void {
    const tick = async () => {
      if (signal.aborted) return;
      await this.probe(signal);
      if (!signal.aborted) setTimeout(tick, this.options.intervalMs).unref();
    };
    void tick();
  }

  async probe(signal?: AbortSignal): Promise<void> {
    const { client } = this.options;
    try {
      // Not shorter than a few seconds, whatever the interval: a busy API server is not a dead one.
      const timeoutMs = Math.max(
        Math.min(5000, this.options.graceMs / 2),
        Math.min(5000, this.options.intervalMs),
      );
      // A 429 is an answer: the API server is up and throttling us (API Priority and Fairness), which
      // must not turn the node NotReady and evict its pods.
      const answered = (error: unknown) => {
        if (!isTooManyRequests(error)) throw error;
        return undefined;
      };
      await client.get('/readyz', { lane: 'heartbeat', attempts: 1, timeoutMs, signal }).catch(answered);
      const previousVersion = this.version;
      if (this.version === undefined || this.unreachableSince !== undefined) {
        const info = await client
          .get<{ gitVersion?: string }>('/version', { lane: 'heartbeat', attempts: 1, timeoutMs, signal })
          .catch(answered);
        if (info) this.version = info.gitVersion;
      }
      this.lastSuccess = Date.now();
      if (this.unreachableSince !== undefined) {
        this.options.logger.info({ cluster: client.name }, 'remote cluster reachable again');
        this.options.onRecovered?.();
      }
      this.unreachableSince = undefined;
      this.lastError = undefined;
      if (previousVersion !== this.version) this.options.onChange();
    } catch (error) {
      if (signal?.aborted) return;
      this.lastError = messageOf(error);
      if (this.unreachableSince === undefined) {
        this.unreachableSince = Date.now();
        this.options.logger.warn(
          { cluster: client.name, err: this.lastError },
          'remote cluster probe failed',
        );
      }
    }
    this.probed = true;
    const state = this.reachability().state;
    if (state !== this.lastState) {
      this.lastState = state;
      this.options.onChange();
    }
  }
}
