// A host namespace's offloading policy from its annotations, pure: which remotes, which remote namespace,
// and who keeps a remote namespace two host namespaces ask for.
import { describe, expect, it } from 'vitest';
import { policyAffinity, policyPatch } from '../../src/namespaces/affinity.ts';
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

describe('the policy at admission', () => {
  const pod = (affinity?: object, annotations: Record<string, string> = {}) =>
    ({ metadata: { annotations }, spec: { containers: [{ name: 'c' }], affinity } }) as never;

  it('allows real nodes and the matching remotes’ virtual nodes, nothing else', () => {
    expect(
      policyAffinity(undefined, ['eu-2', 'eu-1']).nodeAffinity
        ?.requiredDuringSchedulingIgnoredDuringExecution,
    ).toEqual({
      nodeSelectorTerms: [
        { matchExpressions: [{ key: 'type', operator: 'NotIn', values: ['virtual-kubelet'] }] },
        { matchExpressions: [{ key: 'spillway.dev/cluster', operator: 'In', values: ['eu-1', 'eu-2'] }] },
      ],
    });
    // No remote matches: real nodes only.
    expect(
      policyAffinity(undefined, []).nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
        ?.nodeSelectorTerms,
    ).toHaveLength(1);
  });

  it('keeps each of the pod’s own terms, ANDed with the policy', () => {
    const own = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }],
        },
        preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, preference: {} }],
      },
    };
    const result = policyAffinity(own, ['eu-1']).nodeAffinity;
    expect(result?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([
      {
        matchExpressions: [
          { key: 'zone', operator: 'In', values: ['a'] },
          { key: 'type', operator: 'NotIn', values: ['virtual-kubelet'] },
        ],
      },
      {
        matchExpressions: [
          { key: 'zone', operator: 'In', values: ['a'] },
          { key: 'spillway.dev/cluster', operator: 'In', values: ['eu-1'] },
        ],
      },
    ]);
    expect(result?.preferredDuringSchedulingIgnoredDuringExecution).toHaveLength(1);
  });

  it('patches a pod once, and leaves pods of unrestricted namespaces alone', () => {
    const patch = policyPatch(pod(), ['eu-*'], ['eu-1', 'us-1']);
    expect(patch?.map((op) => op.path)).toEqual(['/spec/affinity', '/metadata/annotations']);
    expect(patch?.[1]?.value).toEqual({ 'spillway.dev/remote-clusters-applied': 'eu-*' });
    expect(
      policyPatch(pod(undefined, { 'spillway.dev/remote-clusters-applied': 'eu-*' }), ['eu-*'], []),
    ).toBeUndefined();
    expect(policyPatch(pod(), undefined, ['eu-1'])).toBeUndefined();
  });
});
