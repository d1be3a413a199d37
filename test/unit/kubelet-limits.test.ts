// The kubelet API's decisions as plain tables: which verb a request needs, what an authorization
// decision is cached under, how many sessions may be open, and how many failed authentications a
// source may make.
import { describe, expect, it } from 'vitest';
import type { Identity } from '../../src/kubelet/authn.ts';
import { FailureBudget } from '../../src/kubelet/authn.ts';
import { reviewKey, subresourcesOf, verbOf } from '../../src/kubelet/authz.ts';
import { KubeletError } from '../../src/kubelet/http-errors.ts';
import { SessionLimits } from '../../src/kubelet/sessions.ts';

describe('the verb a request needs', () => {
  it.each([
    ['GET', '/exec/ns/pod/c', 'create'],
    ['POST', '/exec/ns/pod/c', 'create'],
    ['GET', '/attach/ns/pod/c', 'create'],
    ['GET', '/portForward/ns/pod', 'create'],
    ['GET', '/run/ns/pod/c', 'create'],
    ['GET', '/containerLogs/ns/pod/c', 'get'],
    ['POST', '/stats/summary', 'create'],
    ['HEAD', '/healthz', 'get'],
    ['DELETE', '/pods', 'delete'],
    ['GET', '/executive', 'get'],
  ])('%s %s needs %s', (method, path, verb) => {
    expect(verbOf(method, path)).toBe(verb);
  });

  it('maps paths to node subresources as a kubelet does', () => {
    expect(subresourcesOf('/stats/summary')).toEqual(['stats']);
    expect(subresourcesOf('/metrics/resource')).toEqual(['metrics']);
    expect(subresourcesOf('/pods')).toEqual(['pods', 'proxy']);
    expect(subresourcesOf('/exec/ns/pod/c')).toEqual(['proxy']);
  });
});

describe('the authorization cache key', () => {
  const base = {
    user: 'alice',
    groups: ['dev'],
    uid: 'u1',
    extra: { 'scopes.example.com': ['read'], 'authentication.kubernetes.io/credential-id': ['x'] },
    resourceAttributes: { verb: 'get', resource: 'nodes', subresource: 'proxy', name: 'n', version: 'v1' },
  } as const;

  it('changes with every field of the review, extra included', () => {
    const key = reviewKey(base);
    expect(reviewKey({ ...base, extra: { ...base.extra, 'scopes.example.com': ['write'] } })).not.toBe(key);
    expect(reviewKey({ ...base, extra: undefined })).not.toBe(key);
    expect(reviewKey({ ...base, uid: 'u2' })).not.toBe(key);
    expect(reviewKey({ ...base, groups: ['dev', 'ops'] })).not.toBe(key);
    expect(
      reviewKey({ ...base, resourceAttributes: { ...base.resourceAttributes, verb: 'create' } }),
    ).not.toBe(key);
    expect(reviewKey({ ...base, resourceAttributes: { ...base.resourceAttributes, name: 'm' } })).not.toBe(
      key,
    );
  });

  it('does not depend on the order of extra’s keys', () => {
    const reordered = {
      'authentication.kubernetes.io/credential-id': ['x'],
      'scopes.example.com': ['read'],
    };
    expect(reviewKey({ ...base, extra: reordered })).toBe(reviewKey(base));
  });
});

const person = (user: string): Identity => ({ user, groups: [], method: 'token' });
const apiServer: Identity = { user: 'kube-apiserver-kubelet-client', groups: [], method: 'x509' };

function limits(overrides: Partial<ConstructorParameters<typeof SessionLimits>[0]> = {}) {
  return new SessionLimits({
    maxSessions: 10,
    maxSessionsPerPod: 4,
    maxSessionsPerClient: 2,
    apiServerUsers: ['kube-apiserver-kubelet-client'],
    ...overrides,
  });
}

function refusal(admit: () => unknown): { status: number; message: string } | undefined {
  try {
    admit();
    return undefined;
  } catch (error) {
    if (!(error instanceof KubeletError)) throw error;
    return { status: error.status, message: error.message };
  }
}

describe('session limits', () => {
  it('limits a direct caller, but never the API server relaying everyone', () => {
    const sessions = limits();
    sessions.admit({ kind: 'exec', pod: 'ns/a', identity: person('bob') });
    sessions.admit({ kind: 'logs', pod: 'ns/b', identity: person('bob') });
    expect(refusal(() => sessions.admit({ kind: 'logs', pod: 'ns/c', identity: person('bob') }))).toEqual({
      status: 429,
      message: 'too many concurrent sessions for bob (at most 2)',
    });
    for (const pod of ['ns/c', 'ns/c', 'ns/d']) sessions.admit({ kind: 'logs', pod, identity: apiServer });
    expect(sessions.open).toBe(5);
  });

  it('limits one pod, whoever asks', () => {
    const sessions = limits();
    for (let i = 0; i < 4; i++) sessions.admit({ kind: 'logs', pod: 'ns/hot', identity: apiServer });
    expect(refusal(() => sessions.admit({ kind: 'logs', pod: 'ns/hot', identity: apiServer }))?.message).toBe(
      'too many concurrent sessions for pod ns/hot (at most 4)',
    );
    expect(
      refusal(() => sessions.admit({ kind: 'logs', pod: 'ns/cold', identity: apiServer })),
    ).toBeUndefined();
  });

  it('limits the whole kubelet, and releases exactly once', () => {
    const sessions = limits({ maxSessions: 3, maxSessionsPerPod: 10 });
    const releases = [1, 2, 3].map((i) =>
      sessions.admit({ kind: 'exec', pod: `ns/p${i}`, identity: apiServer }),
    );
    expect(refusal(() => sessions.admit({ kind: 'exec', pod: 'ns/p4', identity: apiServer }))?.message).toBe(
      'too many concurrent sessions on this kubelet (at most 3)',
    );
    releases[0]?.();
    releases[0]?.();
    expect(sessions.open).toBe(2);
    sessions.admit({ kind: 'exec', pod: 'ns/p4', identity: apiServer });
    expect(sessions.open).toBe(3);
  });
});

describe('the failed-authentication budget of a source', () => {
  it('allows a burst, then the sustained rate, and gives back what succeeded', () => {
    const budget = new FailureBudget(2, 5);
    const t = 1_000_000;
    for (let i = 0; i < 5; i++) expect(budget.take('a', t)).toBe(true);
    expect(budget.take('a', t)).toBe(false);
    expect(budget.take('b', t)).toBe(true);
    expect(budget.retryAfterSeconds('a', t)).toBe(1);
    expect(budget.take('a', t + 500)).toBe(true);
    expect(budget.take('a', t + 500)).toBe(false);
    budget.refund('a', t + 500);
    expect(budget.take('a', t + 500)).toBe(true);
    // Refilled to the burst, not beyond.
    for (let i = 0; i < 5; i++) expect(budget.take('a', t + 60_000)).toBe(true);
    expect(budget.take('a', t + 60_000)).toBe(false);
  });
});
