// A host namespace's offloading policy from its annotations, pure: which remotes, which remote namespace,
// and who keeps a remote namespace two host namespaces ask for.
import { describe, expect, it } from 'vitest';
import type { HostNamespace } from '../../src/namespaces/host-namespaces.ts';
import {
  type MappingPolicy,
  matchesPatterns,
  remoteRefusal,
  requestedMapping,
  resolveMappings,
} from '../../src/namespaces/policy.ts';

const policy: MappingPolicy = { prefix: 'east-', annotations: true, reserved: new Set(['kube-system']) };

function ns(
  name: string,
  annotations: Record<string, string> = {},
  created = '2026-01-01T00:00:00Z',
): HostNamespace {
  return { metadata: { name, uid: `uid-${name}`, creationTimestamp: created, annotations } };
}

describe('remote namespace naming', () => {
  it('prefix by default, the same name, or an explicit one', () => {
    expect(requestedMapping(ns('shop'), 'shop', policy)).toEqual({ remote: 'east-shop' });
    expect(
      requestedMapping(ns('shop', { 'spillway.dev/remote-namespace-naming': 'same' }), 'shop', policy),
    ).toEqual({
      remote: 'shop',
    });
    expect(
      requestedMapping(ns('shop', { 'spillway.dev/remote-namespace': 'store' }), 'shop', policy),
    ).toEqual({
      remote: 'store',
    });
  });

  it('ignores the naming annotations unless the configuration honours them', () => {
    const closed = { ...policy, annotations: false };
    expect(
      requestedMapping(ns('shop', { 'spillway.dev/remote-namespace': 'store' }), 'shop', closed),
    ).toEqual({
      remote: 'east-shop',
    });
  });

  it('refuses names that are not valid, reserved, or contradictory', () => {
    const refused = (annotations: Record<string, string>) =>
      requestedMapping(ns('shop', annotations), 'shop', policy) as {
        refusal: { reason: string; message: string };
      };
    expect(refused({ 'spillway.dev/remote-namespace': 'Not_OK' }).refusal.reason).toBe(
      'InvalidRemoteNamespace',
    );
    expect(refused({ 'spillway.dev/remote-namespace': 'kube-system' }).refusal.message).toContain('reserved');
    expect(refused({ 'spillway.dev/remote-namespace-naming': 'random' }).refusal.message).toContain(
      '"random"',
    );
    expect(
      refused({ 'spillway.dev/remote-namespace': 'store', 'spillway.dev/remote-namespace-naming': 'same' })
        .refusal.message,
    ).toContain('disagree');
  });
});

describe('conflicts', () => {
  it('the older of two namespaces keeps a remote name both ask for; the other is refused', () => {
    const result = resolveMappings(
      [
        ns('b', { 'spillway.dev/remote-namespace': 'shared' }, '2026-02-01T00:00:00Z'),
        ns('a', { 'spillway.dev/remote-namespace': 'shared' }, '2026-03-01T00:00:00Z'),
      ],
      policy,
      () => undefined,
    );
    expect(result.get('b')).toEqual({ remote: 'shared' });
    expect(result.get('a')).toMatchObject({ refusal: { reason: 'RemoteNamespaceConflict' } });
  });

  it('the namespace whose delegates are already there keeps it, and a changed annotation waits for them', () => {
    const result = resolveMappings(
      [
        ns('old', { 'spillway.dev/remote-namespace': 'shared' }, '2026-01-01T00:00:00Z'),
        ns('new', { 'spillway.dev/remote-namespace-naming': 'same' }, '2026-05-01T00:00:00Z'),
      ],
      { ...policy, prefix: '' },
      (name) => (name === 'new' ? 'shared' : undefined),
    );
    expect(result.get('new')).toEqual({ remote: 'shared' });
    expect(result.get('old')).toMatchObject({ refusal: { reason: 'RemoteNamespaceConflict' } });
  });
});

describe('remote cluster patterns', () => {
  it('glob patterns, comma-separated', () => {
    expect(matchesPatterns('eu-west', ['eu-*'])).toBe(true);
    expect(matchesPatterns('us-east', ['eu-*', 'us-eas?'])).toBe(true);
    expect(matchesPatterns('us-west', ['eu-*', 'us-eas?'])).toBe(false);
    expect(matchesPatterns('eu.west', ['eu-*'])).toBe(false);
  });

  it('a pod of a namespace that does not allow the remote is rejected with the reason', () => {
    const namespace = ns('shop', { 'spillway.dev/remote-clusters': 'eu-*' });
    expect(remoteRefusal(namespace, 'shop', 'eu-1')).toBeUndefined();
    expect(remoteRefusal(namespace, 'shop', 'us-1')).toMatchObject({ reason: 'RemoteClusterNotAllowed' });
    expect(remoteRefusal(ns('other'), 'other', 'us-1')).toBeUndefined();
    expect(remoteRefusal(ns('none', { 'spillway.dev/remote-clusters': '' }), 'none', 'us-1')).toBeDefined();
  });
});
