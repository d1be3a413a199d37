// The metric families recorded at Spillway's choke points (work queues, API requests, watches, lease
// renewals), declared together so names, help texts and labels stay consistent. Each component calls
// one small function here; none builds metrics of its own.
import { counter, gauge, histogram } from './registry.ts';

const durationBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const queueDepth = gauge('spillway_workqueue_depth', 'Keys waiting in a work queue.', ['queue']);
const queueAdds = counter('spillway_workqueue_adds_total', 'Keys added to a work queue.', ['queue']);
const queueRetries = counter(
  'spillway_workqueue_retries_total',
  'Keys re-added to a work queue after a failed reconcile (with back-off).',
  ['queue'],
);
const queueWork = histogram(
  'spillway_workqueue_work_duration_seconds',
  'How long processing one key took.',
  ['queue'],
  durationBuckets,
);
const reconcileDuration = histogram(
  'spillway_reconcile_duration_seconds',
  'Duration of one reconcile, by controller (pods, node, remote-discovery, …).',
  ['controller'],
  durationBuckets,
);
const reconcileResults = counter(
  'spillway_reconcile_total',
  'Reconciles by controller and result (success, requeue, error, terminal).',
  ['controller', 'result'],
);

/** The controller a queue belongs to: `pods/spillway-eu` → `pods`. */
function controllerOf(queue: string): string {
  return queue.split('/')[0] ?? queue;
}

export interface QueueInstruments {
  depth(keys: number): void;
  added(): void;
  retried(): void;
  processed(seconds: number, result: 'success' | 'requeue' | 'error' | 'terminal'): void;
  /** The queue is gone (its remote stopped or moved to another replica): drop its depth series. */
  closed(): void;
}

export function queueInstruments(queue: string): QueueInstruments {
  const controller = controllerOf(queue);
  const depth = queueDepth.labels(queue);
  const adds = queueAdds.labels(queue);
  const retries = queueRetries.labels(queue);
  const work = queueWork.labels(queue);
  const duration = reconcileDuration.labels(controller);
  depth.set(0);
  adds.inc(0);
  retries.inc(0);
  return {
    depth: (keys) => depth.set(keys),
    added: () => adds.inc(),
    retried: () => retries.inc(),
    processed: (seconds, result) => {
      work.observe(seconds);
      duration.observe(seconds);
      reconcileResults.labels(controller, result).inc();
    },
    closed: () => queueDepth.remove(queue),
  };
}

const apiDuration = histogram(
  'spillway_api_request_duration_seconds',
  'API requests Spillway sent, by cluster, verb (HTTP method) and status code.',
  ['cluster', 'verb', 'code'],
  durationBuckets,
);
const apiRequests = counter(
  'spillway_api_requests_total',
  'API requests Spillway sent, by cluster, verb (HTTP method) and status code ("error": no answer).',
  ['cluster', 'verb', 'code'],
);
const apiThrottled = counter(
  'spillway_api_throttled_total',
  'HTTP 429 (Too Many Requests) answers received, by cluster.',
  ['cluster'],
);
const rateLimiterPending = gauge(
  'spillway_api_rate_limiter_pending',
  "Requests waiting for a cluster client's rate limiter (normal lane).",
  ['cluster'],
);

/** One finished API request; `code` is the HTTP status, or undefined when no answer came. */
export function apiRequestDone(
  cluster: string,
  verb: string,
  code: number | undefined,
  seconds: number,
): void {
  const codeLabel = code === undefined ? 'error' : String(code);
  apiDuration.labels(cluster, verb, codeLabel).observe(seconds);
  apiRequests.labels(cluster, verb, codeLabel).inc();
  // Always touched, so the family is there (at 0) before the first 429.
  apiThrottled.labels(cluster).inc(code === 429 ? 1 : 0);
}

export function rateLimiterWaiting(cluster: string, pending: number): void {
  rateLimiterPending.labels(cluster).set(pending);
}

const watchRestarts = counter(
  'spillway_watch_restarts_total',
  'Watch connections (re)started by an informer, by cluster and informer.',
  ['cluster', 'informer'],
);
const relists = counter(
  'spillway_informer_relists_total',
  'Full lists by an informer (at start, and after 410 Gone or a failure), by cluster and informer.',
  ['cluster', 'informer'],
);

/** An informer's name without its cluster prefix and node, so that label sets stay few. */
function informerKind(name: string): string {
  return name.split('/')[1] ?? name;
}

export function watchStarted(cluster: string, informer: string): void {
  watchRestarts.labels(cluster, informerKind(informer)).inc();
}

export function relisted(cluster: string, informer: string): void {
  relists.labels(cluster, informerKind(informer)).inc();
}

const leaseRenewal = histogram(
  'spillway_lease_renew_duration_seconds',
  'Time to renew a Lease: node heartbeats (kind node) and high-availability ownership (kind remote, replica, leader).',
  ['kind'],
  durationBuckets,
);
const leaseFailures = counter('spillway_lease_renew_failures_total', 'Lease renewals that failed, by kind.', [
  'kind',
]);

export function leaseRenewed(kind: string, seconds: number): void {
  leaseRenewal.labels(kind).observe(seconds);
}

export function leaseRenewFailed(kind: string): void {
  leaseFailures.labels(kind).inc();
}
