// The kubelet API's plain requests arrive over HTTP/1.1 or HTTP/2 (an API server's kubelet client
// negotiates h2 and carries a thousand `logs -f` on a few connections): the request and response
// types of both, what differs between them, and the routing of paths to handlers.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse, ServerHttp2Session } from 'node:http2';
import type { Writable } from 'node:stream';
import { badRequest } from './http-errors.ts';

export type HttpRequest = IncomingMessage | Http2ServerRequest;

/** What handlers use of a response: the same in HTTP/1.1 and in HTTP/2's compatibility API. */
export interface HttpResponse {
  readonly headersSent: boolean;
  writeHead(status: number, headers?: OutgoingHttpHeaders): unknown;
  setHeader(name: string, value: string): unknown;
  /** Sends the head now (present on both at run time; the HTTP/2 types omit it). */
  flushHeaders?(): void;
  write(chunk: Buffer | string): boolean;
  end(): unknown;
  end(chunk: Buffer | string): unknown;
  destroy(error?: Error): unknown;
  once(event: 'close' | 'drain', listener: () => void): unknown;
}

function asHttp2(res: HttpResponse): Http2ServerResponse | undefined {
  return 'stream' in res ? (res as unknown as Http2ServerResponse) : undefined;
}

/** Whether the response can no longer be written (the client went away, or it was ended). */
export function responseGone(res: HttpResponse): boolean {
  return asHttp2(res)?.stream.destroyed ?? (res as ServerResponse).destroyed;
}

/** Where a body is piped: the HTTP/2 stream itself (its compat response is no stream.Writable). */
export function bodyOf(res: HttpResponse): Writable {
  return asHttp2(res)?.stream ?? (res as ServerResponse);
}

/** A whole response; the charset is said for text. */
export function send(res: HttpResponse, status: number, type: string, body: string): void {
  const contentType = type.startsWith('text/') || type.includes('json') ? `${type}; charset=utf-8` : type;
  const payload = Buffer.from(body);
  res.writeHead(status, { 'content-type': contentType, 'content-length': String(payload.length) });
  res.end(payload);
}

export function sendJson(res: HttpResponse, value: unknown): void {
  send(res, 200, 'application/json', JSON.stringify(value));
}

export interface RequestPath {
  /** The path as sent (for authorization's verb and subresource). */
  readonly raw: string;
  /** Its non-empty segments, percent-decoded. */
  readonly segments: readonly string[];
  readonly query: URLSearchParams;
}

/** Splits a request target; a malformed percent-encoding is a 400. */
export function requestPath(url: string | undefined): RequestPath {
  const target = url ?? '/';
  const mark = target.indexOf('?');
  const raw = mark < 0 ? target : target.slice(0, mark);
  const search = mark < 0 ? '' : target.slice(mark + 1);
  try {
    const segments = raw.split('/').filter(Boolean).map(decodeURIComponent);
    return { raw, segments, query: new URLSearchParams(search) };
  } catch {
    throw badRequest(`malformed path ${JSON.stringify(raw)}`);
  }
}

/** An HTTP/2 connection without streams is closed after this: node:https's keep-alive timeout for HTTP/1.1. */
const IDLE_SESSION_MS = 5_000;

/**
 * Closes an HTTP/2 connection once it has had no stream for `idleMs` (a caller that connects
 * and sends nothing holds nothing for long). A connection with open streams stays, however quiet they
 * are: an idle `logs -f` must not end.
 */
export function closeWhenIdle(session: ServerHttp2Session, idleMs = IDLE_SESSION_MS): void {
  let open = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => session.close(), idleMs);
    timer.unref();
  };
  arm();
  session.on('stream', (stream) => {
    open++;
    clearTimeout(timer);
    stream.once('close', () => {
      open--;
      if (open === 0 && !session.closed) arm();
    });
  });
  session.once('close', () => clearTimeout(timer));
}
