// The one place where failures become HTTP statuses on the kubelet API, as a kubelet answers: a short
// plain-text body that the API server relays to kubectl. 5xx are logged as errors, 4xx as debug.
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import {
  isForbidden,
  isNotFound,
  isUnauthorized,
  kubeStatusOf,
  messageOf,
  statusCodeOf,
} from '../kube/errors.ts';
import type { HttpResponse } from './http.ts';

/** A failure with a status the caller chose (bad parameters, unknown pod, refused caller). */
export class KubeletError extends Error {
  override readonly name = 'KubeletError';
  readonly status: number;
  /** Response headers that go with the status (Retry-After for a 429). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    message: string,
    options?: ErrorOptions & { headers?: Record<string, string> },
  ) {
    super(message, options);
    this.status = status;
    this.headers = options?.headers ?? {};
  }
}

export const badRequest = (message: string) => new KubeletError(400, message);
export const notFound = (message: string) => new KubeletError(404, message);

export function httpStatusOf(error: unknown): number {
  if (error instanceof KubeletError) return error.status;
  // A malformed percent-encoding in the path (decodeURIComponent, or express decoding a parameter).
  if (error instanceof URIError) return 400;
  if (isNotFound(error)) return 404;
  if (isForbidden(error)) return 403;
  if (isUnauthorized(error)) return 502; // our credentials for the remote failed: not the caller's fault
  const status = statusCodeOf(error);
  if (status === 400 || status === 409 || status === 422 || status === 429) return status;
  if (status !== undefined && status >= 500) return 502;
  return 500;
}

export function httpMessageOf(error: unknown): string {
  if (error instanceof KubeletError) return error.message;
  return kubeStatusOf(error)?.message ?? messageOf(error);
}

function headersOf(error: unknown): Record<string, string> {
  return error instanceof KubeletError ? { ...error.headers } : {};
}

function log(logger: Logger, status: number, error: unknown): void {
  const fields = { status, err: httpMessageOf(error) };
  if (status >= 500) logger.error(fields, 'kubelet API request failed');
  else logger.debug(fields, 'kubelet API request refused');
}

export function sendError(res: HttpResponse, error: unknown, logger: Logger): void {
  const status = httpStatusOf(error);
  log(logger, status, error);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headersOf(error) });
  res.end(`${httpMessageOf(error)}\n`);
}

/** Refuses an upgrade request on its raw socket (no HTTP response object exists yet). */
export function rejectUpgrade(
  socket: Duplex,
  error: unknown,
  logger: Logger,
  headers: Record<string, string | string[]> = {},
): void {
  const status = httpStatusOf(error);
  log(logger, status, error);
  if (socket.destroyed) return;
  const body = `${httpMessageOf(error)}\n`;
  const extra = Object.entries({ ...headersOf(error), ...headers })
    .flatMap(([name, values]) =>
      (Array.isArray(values) ? values : [values]).map((value) => `${name}: ${value}\r\n`),
    )
    .join('');
  socket.end(
    `HTTP/1.1 ${status} ${statusText(status)}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${extra}\r\n${body}`,
  );
}

function statusText(status: number): string {
  const texts: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    405: 'Method Not Allowed',
    429: 'Too Many Requests',
    431: 'Request Header Fields Too Large',
    500: 'Internal Server Error',
    502: 'Bad Gateway',
    503: 'Service Unavailable',
  };
  return texts[status] ?? 'Error';
}
