// One error vocabulary for everything that talks to Kubernetes. HTTP failures are ApiErrors (status in
// `code`, body a JSON string, as client-node's ApiException, which is read the same way), watch
// failures carry `statusCode`; network failures are plain errors with a `code` such as ECONNREFUSED,
// often wrapped as a cause.

export interface KubeStatus {
  readonly kind?: string;
  readonly status?: string;
  readonly message?: string;
  readonly reason?: string;
  readonly code?: number;
  readonly details?: { causes?: { reason?: string; message?: string; field?: string }[] };
}

/** An HTTP answer other than 2xx from an API server: its status, its body (a Status) and headers. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly code: number;
  readonly body: string;
  readonly headers: Record<string, string>;

  constructor(code: number, message: string, body: string, headers: Record<string, string> = {}) {
    super(`${message}: HTTP ${code}`);
    this.code = code;
    this.body = body;
    this.headers = headers;
  }
}

/** A failure that retrying cannot fix (bad input, refused by policy); the work queue never retries it. */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
}

export function isTerminal(error: unknown): boolean {
  return chain(error).some((e) => e instanceof TerminalError);
}

function chain(error: unknown): unknown[] {
  const errors: unknown[] = [];
  let current: unknown = error;
  while (current !== undefined && current !== null && errors.length < 10) {
    errors.push(current);
    current = (current as { cause?: unknown }).cause;
  }
  return errors;
}

/** The HTTP status of the first error in the cause chain that carries one, or undefined. */
export function statusCodeOf(error: unknown): number | undefined {
  for (const e of chain(error)) {
    const candidate = e as { code?: unknown; statusCode?: unknown };
    if (typeof candidate.statusCode === 'number') return candidate.statusCode;
    if (typeof candidate.code === 'number' && candidate.code >= 100 && candidate.code < 600)
      return candidate.code;
  }
  return undefined;
}

/** The Kubernetes Status object a failed call returned, parsed from the exception body. */
export function kubeStatusOf(error: unknown): KubeStatus | undefined {
  for (const e of chain(error)) {
    const body = (e as { body?: unknown }).body;
    if (typeof body === 'string') {
      try {
        const parsed = JSON.parse(body) as KubeStatus;
        if (parsed && typeof parsed === 'object') return parsed;
      } catch {
        // a non-JSON body (an HTML error page from a proxy) has no status to offer
      }
    } else if (body && typeof body === 'object' && 'kind' in body) {
      return body as KubeStatus;
    }
  }
  return undefined;
}

export function reasonOf(error: unknown): string | undefined {
  return kubeStatusOf(error)?.reason;
}

/** The human message of a failure: the API server's Status message when there is one. */
export function messageOf(error: unknown): string {
  const status = kubeStatusOf(error);
  if (status?.message) return status.message;
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `${error.message.split('\n')[0]}${cause}`;
  }
  return String(error);
}

export const isNotFound = (error: unknown): boolean => statusCodeOf(error) === 404;
export const isConflict = (error: unknown): boolean =>
  statusCodeOf(error) === 409 && reasonOf(error) !== 'AlreadyExists';
export const isAlreadyExists = (error: unknown): boolean =>
  statusCodeOf(error) === 409 && reasonOf(error) === 'AlreadyExists';
export const isGone = (error: unknown): boolean => statusCodeOf(error) === 410;
export const isTooManyRequests = (error: unknown): boolean => statusCodeOf(error) === 429;
export const isForbidden = (error: unknown): boolean => statusCodeOf(error) === 403;
export const isUnauthorized = (error: unknown): boolean => statusCodeOf(error) === 401;
export const isInvalid = (error: unknown): boolean => statusCodeOf(error) === 422;

/** A create refused because its namespace is being deleted (it will not accept anything new again). */
export function isNamespaceTerminating(error: unknown): boolean {
  if (!isForbidden(error)) return false;
  const status = kubeStatusOf(error);
  return (
    status?.details?.causes?.some((cause) => cause.reason === 'NamespaceTerminating') === true ||
    /because it is being terminated/.test(status?.message ?? '')
  );
}

const networkCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** A failure to reach the server at all (refused, reset, timed out), as opposed to an HTTP answer. */
export function isNetworkError(error: unknown): boolean {
  return chain(error).some((e) => {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && networkCodes.has(code)) return true;
    const name = (e as { name?: unknown }).name;
    return name === 'TimeoutError' || (e instanceof TypeError && e.message === 'fetch failed');
  });
}

/** Worth retrying: throttled, a server-side hiccup, or the network. */
export function isRetriable(error: unknown): boolean {
  if (isTerminal(error)) return false;
  const status = statusCodeOf(error);
  if (status === undefined) return isNetworkError(error);
  return status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
}

/** Seconds from a Retry-After header (429 and 503 answers), if the server sent one. */
export function retryAfterSecondsOf(error: unknown): number | undefined {
  for (const e of chain(error)) {
    const headers = (e as { headers?: unknown }).headers;
    if (!headers || typeof headers !== 'object') continue;
    const value =
      (headers as Record<string, unknown>)['retry-after'] ??
      (headers as Record<string, unknown>)['Retry-After'];
    const seconds = Number(Array.isArray(value) ? value[0] : value);
    if (Number.isFinite(seconds) && seconds >= 0) return seconds;
  }
  const retryAfter = kubeStatusOf(error)?.details as { retryAfterSeconds?: number } | undefined;
  return retryAfter?.retryAfterSeconds;
}
