// The pure parts of reflection: the copy of a host object, whether a copy holds it, and who uses what.
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { desiredCopy, sameContent } from '../../src/pods/copies.ts';
import type { HostObject } from '../../src/pods/host-objects.ts';
import { ReferenceUsage } from '../../src/pods/usage.ts';

const scope = { hostClusterName: 'east', nodeName: 'spillway-west', namespacePrefix: '' };
const source = (data: Record<string, string>, type?: string): HostObject => ({
  metadata: { name: 'settings', namespace: 'shop', resourceVersion: '42' },
  hydrated: true,
  data,
  ...(type ? { type } : {}),
});

describe('desiredCopy', () => {
  it('names the copy after its host cluster and virtual node, and marks it as ours and whence it came', () => {
    const copy = desiredCopy('ConfigMap', source({ a: '1' }), scope);
    expect(copy.metadata).toMatchObject({
      name: 'settings.east.spillway-west',
      namespace: 'shop',
      labels: {
        'spillway.dev/managed-by': 'spillway',
        'spillway.dev/host-cluster': 'east',
        'spillway.dev/virtual-node': 'spillway-west',
        'spillway.dev/reflected': 'ConfigMap',
      },
      annotations: { 'spillway.dev/source': 'shop/settings', 'spillway.dev/source-resource-version': '42' },
    });
    expect(copy.data).toEqual({ a: '1' });
  });

  it('turns a service-account token Secret into an Opaque one (the remote would claim and empty it)', () => {
    expect(
      desiredCopy('Secret', source({ t: 'eA==' }, 'kubernetes.io/service-account-token'), scope).type,
    ).toBe('Opaque');
    expect(desiredCopy('Secret', source({ t: 'eA==' }, 'kubernetes.io/tls'), scope).type).toBe(
      'kubernetes.io/tls',
    );
  });
});

describe('sameContent', () => {
  const desired = desiredCopy('ConfigMap', source({ a: '1' }), scope);
  it('is true for what we would write, whatever else the remote added', () => {
    const copy = {
      ...desired,
      metadata: { ...desired.metadata, labels: { ...desired.metadata?.labels, extra: 'x' } },
    };
    expect(sameContent(copy, desired)).toBe(true);
  });
  it('is false when the content was edited, a key removed, or a mark taken away', () => {
    expect(sameContent({ ...desired, data: { a: '2' } }, desired)).toBe(false);
    expect(sameContent({ ...desired, data: {} }, desired)).toBe(false);
    expect(sameContent({ ...desired, metadata: { ...desired.metadata, labels: {} } }, desired)).toBe(false);
  });
});

describe('ReferenceUsage', () => {
  const pod = (uid: string, name = 'web-1'): V1Pod => ({
    metadata: { name, namespace: 'shop', uid },
    spec: { containers: [{ name: 'main', envFrom: [{ configMapRef: { name: 'settings' } }] }] },
  });
  const delegate: V1Pod = {
    metadata: { name: 'web-1', namespace: 'shop', uid: 'd-1' },
    spec: {
      containers: [{ name: 'main', envFrom: [{ configMapRef: { name: 'settings.east.spillway-west' } }] }],
    },
  };

  function usage() {
    const calls: string[] = [];
    const index = new ReferenceUsage(
      scope,
      {
        firstUser: (key) => calls.push(`first ${key}`),
        lastUserGone: (key) => calls.push(`last ${key}`),
        maybeUnused: (key) => calls.push(`unused ${key}`),
      },
      () => 'ConfigMap/shop/settings',
    );
    return { index, calls };
  }

  it('counts host pods and delegates, and says when the last user of a copy went', () => {
    const { index, calls } = usage();
    index.trackHostPod('add', pod('a'));
    index.trackDelegate('add', delegate);
    expect(index.users('ConfigMap/shop/settings')).toBe(2);
    index.trackHostPod('delete', pod('a'));
    // The delegate (terminating, say) still uses the copy: it stays.
    expect(index.users('ConfigMap/shop/settings')).toBe(1);
    expect(calls).toEqual(['first ConfigMap/shop/settings', 'last ConfigMap/shop/settings']);
    index.trackDelegate('delete', delegate);
    expect(index.users('ConfigMap/shop/settings')).toBe(0);
    expect(calls.at(-1)).toBe('unused ConfigMap/shop/settings');
  });

  it('computes a pod’s references once per UID, and again for a namesake', () => {
    const { index } = usage();
    index.trackHostPod('add', pod('a'));
    index.trackHostPod('update', pod('a'));
    expect(index.users('ConfigMap/shop/settings')).toBe(1);
    index.trackHostPod('update', pod('b'));
    expect(index.users('ConfigMap/shop/settings')).toBe(1);
    expect(index.referencesOf('shop/web-1')).toEqual([
      { kind: 'ConfigMap', name: 'settings', optional: false },
    ]);
  });
});
