import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { delegatePod, delegateReferences, delegateUpdate, type ForgeContext } from '../../src/pods/forge.ts';
import { referencesOf, reflectedName } from '../../src/pods/references.ts';

const context: ForgeContext = {
  hostClusterName: 'east',
  nodeName: 'spillway-west',
  namespacePrefix: '',
  virtualOnlyLabelKeys: new Set(['type', 'kubernetes.io/role', 'kubernetes.io/hostname', 'team']),
  virtualTaintKeys: new Set(['virtual-kubelet.io/provider']),
  priorityClassExists: (name) => name === 'high',
};

function hostPod(spec: Partial<V1Pod['spec']> = {}, metadata: Partial<V1Pod['metadata']> = {}): V1Pod {
  return {
    metadata: {
      name: 'web-1',
      namespace: 'shop',
      uid: 'uid-1',
      labels: { app: 'web', 'pod-template-hash': 'abc123' },
      annotations: { note: 'kept' },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'rs', controller: true },
      ],
      ...metadata,
    },
    spec: {
      nodeName: 'spillway-west',
      containers: [
        {
          name: 'main',
          image: 'nginx:1',
          volumeMounts: [
            { name: 'kube-api-access-x', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' },
            { name: 'config', mountPath: '/etc/config' },
          ],
          env: [{ name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } }],
        },
      ],
      volumes: [
        {
          name: 'kube-api-access-x',
          projected: {
            sources: [
              { serviceAccountToken: { path: 'token', expirationSeconds: 3607 } },
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
            ],
          },
        },
        { name: 'config', configMap: { name: 'web-config' } },
      ],
      serviceAccountName: 'web',
      priority: 1000,
      priorityClassName: 'high',
      tolerations: [
        { key: 'virtual-kubelet.io/provider', operator: 'Exists' },
        {
          key: 'node.kubernetes.io/not-ready',
          operator: 'Exists',
          effect: 'NoExecute',
          tolerationSeconds: 300,
        },
      ],
      ...spec,
    },
  };
}

describe('delegatePod', () => {
  it('keeps the user’s intent and drops what only makes sense in the host', () => {
    const delegate = delegatePod(hostPod(), context);
    expect(delegate.metadata).toEqual({
      name: 'web-1',
      namespace: 'shop',
      labels: {
        app: 'web',
        'spillway.dev/managed-by': 'spillway',
        'spillway.dev/host-cluster': 'east',
        'spillway.dev/host-pod-uid': 'uid-1',
        'spillway.dev/virtual-node': 'spillway-west',
      },
      annotations: {
        note: 'kept',
        'spillway.dev/managed-annotations': 'note',
        'spillway.dev/managed-labels': 'app',
        'spillway.dev/host-namespace': 'shop',
        'spillway.dev/host-name': 'web-1',
        'spillway.dev/host-controller-labels': '{"pod-template-hash":"abc123"}',
      },
    });
    const spec = delegate.spec;
    expect(spec?.nodeName).toBeUndefined();
    expect(spec?.serviceAccountName).toBeUndefined();
    expect(spec?.automountServiceAccountToken).toBe(false);
    expect(spec?.priority).toBeUndefined();
    expect(spec?.priorityClassName).toBe('high');
    expect(spec?.volumes).toEqual([{ name: 'config', configMap: { name: 'web-config.east.spillway-west' } }]);
    expect(spec?.containers[0]?.volumeMounts).toEqual([{ name: 'config', mountPath: '/etc/config' }]);
    expect(spec?.containers[0]?.env?.[0]?.valueFrom?.secretKeyRef?.name).toBe('db.east.spillway-west');
    expect(spec?.tolerations).toEqual([
      {
        key: 'node.kubernetes.io/not-ready',
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 300,
      },
    ]);
  });

  it('drops a PriorityClass the remote does not have', () => {
    expect(
      delegatePod(hostPod({ priorityClassName: 'low' }), context).spec?.priorityClassName,
    ).toBeUndefined();
  });

  it('uses the namespace prefix', () => {
    expect(delegatePod(hostPod(), { ...context, namespacePrefix: 'east-' }).metadata?.namespace).toBe(
      'east-shop',
    );
  });

  it('removes nodeSelector entries on virtual-only labels and keeps the rest', () => {
    const delegate = delegatePod(
      hostPod({
        nodeSelector: {
          'spillway.dev/cluster': 'west',
          'kubernetes.io/hostname': 'spillway-west',
          team: 'a',
          'topology.kubernetes.io/region': 'eu',
        },
      }),
      context,
    );
    expect(delegate.spec?.nodeSelector).toEqual({ 'topology.kubernetes.io/region': 'eu' });
    expect(
      delegatePod(hostPod({ nodeSelector: { type: 'virtual-kubelet' } }), context).spec?.nodeSelector,
    ).toBeUndefined();
  });

  it('cleans node affinity: virtual-only requirements go, the user’s zone stays', () => {
    const delegate = delegatePod(
      hostPod({
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                {
                  matchExpressions: [
                    { key: 'spillway.dev/cluster', operator: 'In', values: ['west'] },
                    { key: 'topology.kubernetes.io/zone', operator: 'In', values: ['eu-a'] },
                  ],
                },
              ],
            },
            preferredDuringSchedulingIgnoredDuringExecution: [
              {
                weight: 100,
                preference: {
                  matchExpressions: [{ key: 'type', operator: 'NotIn', values: ['virtual-kubelet'] }],
                },
              },
              {
                weight: 10,
                preference: { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] },
              },
            ],
          },
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname' }],
          },
        },
      }),
      context,
    );
    expect(delegate.spec?.affinity).toEqual({
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            { matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['eu-a'] }] },
          ],
        },
        preferredDuringSchedulingIgnoredDuringExecution: [
          {
            weight: 10,
            preference: { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] },
          },
        ],
      },
      podAntiAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname' }],
      },
    });
  });

  it('drops a required affinity entirely when a term only targeted the virtual node (terms are ORed)', () => {
    const delegate = delegatePod(
      hostPod({
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['spillway-west'] }] },
                {
                  matchExpressions: [
                    { key: 'topology.kubernetes.io/zone', operator: 'In', values: ['us-a'] },
                  ],
                },
              ],
            },
          },
        },
      }),
      context,
    );
    expect(delegate.spec?.affinity).toBeUndefined();
  });

  it('drops readiness gates, overhead and preemption policy; forges ephemeral containers (added later through their subresource)', () => {
    const delegate = delegatePod(
      hostPod({
        readinessGates: [{ conditionType: 'example.com/ready' }],
        overhead: { cpu: '250m' },
        preemptionPolicy: 'Never',
        ephemeralContainers: [{ name: 'debug', image: 'busybox' }],
      }),
      context,
    );
    expect(delegate.spec?.readinessGates).toBeUndefined();
    expect(delegate.spec?.overhead).toBeUndefined();
    expect(delegate.spec?.preemptionPolicy).toBeUndefined();
    expect(delegate.spec?.ephemeralContainers).toEqual([{ name: 'debug', image: 'busybox' }]);
  });
});

describe('references', () => {
  it('finds every ConfigMap and Secret, mandatory if any use is', () => {
    const refs = referencesOf({
      containers: [
        {
          name: 'a',
          envFrom: [{ configMapRef: { name: 'env', optional: true } }, { secretRef: { name: 'creds' } }],
          env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'env', key: 'x' } } }],
        },
      ],
      initContainers: [
        {
          name: 'i',
          env: [{ name: 'Y', valueFrom: { secretKeyRef: { name: 'opt', key: 'y', optional: true } } }],
        },
      ],
      volumes: [
        {
          name: 'p',
          projected: {
            sources: [{ secret: { name: 'tls' } }, { configMap: { name: 'bundle', optional: true } }],
          },
        },
      ],
      imagePullSecrets: [{ name: 'registry' }],
    });
    expect(refs).toEqual(
      expect.arrayContaining([
        { kind: 'ConfigMap', name: 'env', optional: false },
        { kind: 'Secret', name: 'creds', optional: false },
        { kind: 'Secret', name: 'opt', optional: true },
        { kind: 'Secret', name: 'tls', optional: false },
        { kind: 'ConfigMap', name: 'bundle', optional: true },
        { kind: 'Secret', name: 'registry', optional: true },
      ]),
    );
    expect(refs).toHaveLength(6);
  });

  it('leaves out the host’s service-account token volume', () => {
    expect(
      delegateReferences(hostPod().spec)
        .map((r) => r.name)
        .sort(),
    ).toEqual(['db', 'web-config']);
  });

  it('names reflected copies per host cluster and virtual node, within 253 characters', () => {
    expect(reflectedName('db', { hostClusterName: 'East_1', nodeName: 'spillway-west' })).toBe(
      'db.east-1.spillway-west',
    );
    const long = reflectedName('x'.repeat(250), { hostClusterName: 'east', nodeName: 'spillway-west' });
    expect(long.length).toBeLessThanOrEqual(253);
    expect(long.endsWith('.east.spillway-west')).toBe(true);
  });
});

describe('delegateUpdate', () => {
  const desired = delegatePod(hostPod(), context);

  it('is nothing when the delegate matches', () => {
    expect(delegateUpdate(desired, structuredClone(desired))).toBeUndefined();
  });

  it('leaves alone labels and annotations the remote added (topology labels at binding)', () => {
    const current = structuredClone(desired);
    current.metadata = {
      ...current.metadata,
      labels: { ...current.metadata?.labels, 'topology.kubernetes.io/zone': 'eu-a' },
      annotations: { ...current.metadata?.annotations, 'mutated-by': 'remote-webhook' },
    };
    expect(delegateUpdate(desired, current)).toBeUndefined();
  });

  it('removes a label the host pod lost, because Spillway had set it', () => {
    const current = structuredClone(desired);
    const withoutApp = delegatePod(hostPod({}, { labels: {} }), context);
    expect(delegateUpdate(withoutApp, current)).toEqual({
      metadata: { labels: { app: null }, annotations: { 'spillway.dev/managed-labels': '' } },
    });
  });

  it('carries new images, labels, annotations, activeDeadlineSeconds and added tolerations', () => {
    const current = structuredClone(desired);
    const changed = delegatePod(
      hostPod(
        {
          containers: [{ ...hostPod().spec?.containers[0], name: 'main', image: 'nginx:2' }],
          activeDeadlineSeconds: 60,
          tolerations: [...(hostPod().spec?.tolerations ?? []), { key: 'gpu', operator: 'Exists' }],
        },
        { labels: { app: 'web', tier: 'front' }, annotations: {} },
      ),
      context,
    );
    const patch = delegateUpdate(changed, current) as {
      metadata: Record<string, Record<string, unknown>>;
      spec: Record<string, unknown>;
    };
    expect(patch.metadata.labels).toMatchObject({ tier: 'front' });
    expect(patch.metadata.annotations).toMatchObject({ note: null });
    expect(patch.spec.containers).toEqual([{ name: 'main', image: 'nginx:2' }]);
    expect(patch.spec.activeDeadlineSeconds).toBe(60);
    expect(patch.spec.tolerations).toContainEqual({ key: 'gpu', operator: 'Exists' });
  });
});
