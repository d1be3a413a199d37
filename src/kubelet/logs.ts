// GET /containerLogs/{namespace}/{pod}/{container}: the delegate's log, streamed from the remote API
// server's pods/log with backpressure; the remote stream is closed as soon as the client goes away.
import { pipeline } from 'node:stream/promises';
import { bodyOf, type HttpRequest, type HttpResponse, responseGone } from './http.ts';
import { badRequest } from './http-errors.ts';
import type { ResolvedPod } from './resolve.ts';

const flags = ['follow', 'previous', 'timestamps'] as const;

function flag(value: string | null): boolean {
  return value === 'true' || value === '1';
}

function positiveInteger(query: URLSearchParams, name: string, minimum: number): string | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < minimum) {
    throw badRequest(`${name} must be an integer of at least ${minimum}, not "${value}"`);
  }
  return value;
}

/** The remote pods/log query for a kubelet containerLogs query, validated as the kubelet validates it. */
export function remoteLogQuery(container: string, query: URLSearchParams): URLSearchParams {
  const remote = new URLSearchParams({ container });
  for (const name of flags) if (flag(query.get(name))) remote.set(name, 'true');
  // `tail` is the kubelet's legacy name for tailLines; "all" means no limit.
  const tail = query.get('tailLines') ?? (query.get('tail') === 'all' ? null : query.get('tail'));
  if (tail !== null)
    remote.set(
      'tailLines',
      positiveInteger(new URLSearchParams({ tailLines: tail }), 'tailLines', 0) as string,
    );
  const limitBytes = positiveInteger(query, 'limitBytes', 1);
  if (limitBytes) remote.set('limitBytes', limitBytes);
  const sinceSeconds = positiveInteger(query, 'sinceSeconds', 1);
  const sinceTime = query.get('sinceTime');
  if (sinceSeconds && sinceTime)
    throw badRequest('at most one of sinceSeconds or sinceTime may be specified');
  if (sinceSeconds) remote.set('sinceSeconds', sinceSeconds);
  if (sinceTime) {
    if (Number.isNaN(Date.parse(sinceTime)))
      throw badRequest(`sinceTime must be RFC 3339, not "${sinceTime}"`);
    remote.set('sinceTime', sinceTime);
  }
  const stream = query.get('stream');
  if (stream) {
    if (!['All', 'Stdout', 'Stderr'].includes(stream))
      throw badRequest(`stream must be All, Stdout or Stderr, not "${stream}"`);
    if (stream !== 'All' && remote.has('tailLines'))
      throw badRequest('tailLines cannot be used with a single stream');
    remote.set('stream', stream);
  }
  return remote;
}

export async function serveLogs(
  _req: HttpRequest,
  res: HttpResponse,
  target: ResolvedPod,
  container: string,
  query: URLSearchParams,
): Promise<void> {
  const remoteQuery = remoteLogQuery(container, query);
  const client = target.remote.client;
  const path = `/api/v1/namespaces/${target.delegateNamespace}/pods/${target.delegateName}/log`;
  const controller = new AbortController();
  // The client went away: stop following in the remote at once.
  res.once('close', () => controller.abort());
  // A failure (404, 400) is an ApiError carrying the remote's Status, mapped to the same HTTP status.
  // The body is a Node stream read only as fast as it is consumed (a 16 KiB buffer, and over HTTP/2
  // the stream's 64 KiB window): a slow client leaves the remote's bytes in the remote, not in memory
  // here. A followed log may stay open for hours: it goes over HTTP/2 where the remote speaks it, so
  // that a thousand of them share a few connections instead of holding one each.
  const request = { query: Object.fromEntries(remoteQuery), accept: '*/*', signal: controller.signal };
  const response = remoteQuery.has('follow')
    ? await client.follow(path, request)
    : await client.stream(path, request);
  // Chunked over HTTP/1.1 (no length is known); HTTP/2 has no such header.
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  res.flushHeaders?.();
  try {
    // pipeline applies backpressure: a slow reader slows the remote stream instead of filling memory.
    await pipeline(response, bodyOf(res));
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  }
  if (responseGone(res)) controller.abort();
}
