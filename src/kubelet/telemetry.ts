// The kubelet API's own metrics (spillway_kubelet_*), declared once in the shared registry.
import { counter, gauge } from '../metrics/registry.ts';

export type SessionKind = 'logs' | 'exec' | 'attach' | 'portforward' | 'run';
export type SessionLimitName = 'global' | 'pod' | 'client';

export const sessionsOpen = gauge(
  'spillway_kubelet_sessions',
  'Streaming sessions (logs, exec, attach, port-forward, run) open on the kubelet API',
  ['kind'],
);

export const sessionsRefused = counter(
  'spillway_kubelet_sessions_refused_total',
  'Streaming sessions refused with 429, by the limit that was reached (global, pod, client)',
  ['kind', 'limit'],
);

export const streamPauses = counter(
  'spillway_kubelet_stream_pauses_total',
  'Times a stream stopped reading one side because the other side was slow (backpressure)',
  ['direction'],
);

export const authentications = counter(
  'spillway_kubelet_authentications_total',
  'Requests to the kubelet API by how their caller was authenticated (x509, token, anonymous) and the outcome',
  ['method', 'result'],
);

export const tokenReviews = counter(
  'spillway_kubelet_token_reviews_total',
  'TokenReviews sent to the host API server, by outcome (authenticated, rejected, error)',
  ['result'],
);

export const accessReviews = counter(
  'spillway_kubelet_subject_access_reviews_total',
  'SubjectAccessReviews sent to the host API server, by outcome (allowed, denied, error)',
  ['result'],
);
