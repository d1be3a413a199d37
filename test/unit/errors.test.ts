import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  isAlreadyExists,
  isConflict,
  isGone,
  isNamespaceTerminating,
  isNetworkError,
  isNotFound,
  isRetriable,
  isTooManyRequests,
  messageOf,
  retryAfterSecondsOf,
  TerminalError,
} from '../../src/kube/errors.ts';

function apiError(code: number, reason: string, message = 'boom', headers: Record<string, string> = {}) {
  const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code });
  return new ApiException(code, 'failed', body, headers);
}

describe('the error vocabulary', () => {
  it('reads statuses from ApiException, watch errors and wrapped causes', () => {
    expect(isNotFound(apiError(404, 'NotFound'))).toBe(true);
    expect(isNotFound(new Error('reading pod', { cause: apiError(404, 'NotFound') }))).toBe(true);
    expect(isGone(Object.assign(new Error('watch'), { statusCode: 410 }))).toBe(true);
    expect(isTooManyRequests(apiError(429, 'TooManyRequests'))).toBe(true);
  });

  it('knows a create refused because its namespace is being deleted', () => {
    const body = JSON.stringify({
      kind: 'Status',
      reason: 'Forbidden',
      code: 403,
      message:
        'events "x" is forbidden: unable to create new content in namespace a because it is being terminated',
      details: { causes: [{ reason: 'NamespaceTerminating', field: 'metadata.namespace' }] },
    });
    expect(isNamespaceTerminating(new ApiException(403, 'failed', body, {}))).toBe(true);
    expect(isNamespaceTerminating(apiError(403, 'Forbidden', 'pods is forbidden: User cannot create'))).toBe(
      false,
    );
    expect(isNamespaceTerminating(apiError(404, 'NotFound'))).toBe(false);
  });

  it('tells a conflict from an already-existing object', () => {
    expect(isConflict(apiError(409, 'Conflict'))).toBe(true);
    expect(isAlreadyExists(apiError(409, 'AlreadyExists'))).toBe(true);
    expect(isConflict(apiError(409, 'AlreadyExists'))).toBe(false);
  });

  it('retries throttling, server hiccups and network failures but not terminal or client errors', () => {
    expect(isRetriable(apiError(429, 'TooManyRequests'))).toBe(true);
    expect(isRetriable(apiError(503, 'ServiceUnavailable'))).toBe(true);
    expect(isRetriable(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isRetriable(new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } }))).toBe(true);
    expect(isRetriable(apiError(422, 'Invalid'))).toBe(false);
    expect(isRetriable(apiError(403, 'Forbidden'))).toBe(false);
    expect(isRetriable(new TerminalError('no', { cause: apiError(503, 'ServiceUnavailable') }))).toBe(false);
    expect(isNetworkError(apiError(500, 'InternalError'))).toBe(false);
  });

  it('honours Retry-After from the header or the Status details', () => {
    expect(retryAfterSecondsOf(apiError(429, 'TooManyRequests', 'slow down', { 'retry-after': '3' }))).toBe(
      3,
    );
    const body = JSON.stringify({ kind: 'Status', code: 429, details: { retryAfterSeconds: 7 } });
    expect(retryAfterSecondsOf(new ApiException(429, 'x', body, {}))).toBe(7);
    expect(retryAfterSecondsOf(new Error('nothing'))).toBeUndefined();
  });

  it("prefers the API server's message over the exception's long text", () => {
    expect(messageOf(apiError(422, 'Invalid', 'spec.containers: Required value'))).toBe(
      'spec.containers: Required value',
    );
    expect(messageOf(new Error('deleting delegate ns/p', { cause: new Error('socket hang up') }))).toBe(
      'deleting delegate ns/p: socket hang up',
    );
  });
});
