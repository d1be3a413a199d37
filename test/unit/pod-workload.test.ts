// Forging what a delegate needs besides its containers: service-account tokens by mode, the downward
// API resolved to the host pod's values, claims pointing at their remote claims, and the pod's own
// Secret that carries tokens and downward files. Pure, with plain objects.
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { formatMap, goQuote, hostFieldValue } from '../../src/pods/downward.ts';
import { delegatePod, delegateReferences, type ForgeContext } from '../../src/pods/forge.ts';
import { ephemeralToAdd, resizeOf } from '../../src/pods/live.ts';
import { planPodSecret, refreshAt } from '../../src/pods/pod-secret.ts';
import { type TokenMode, type TokenPolicy, tokenChoice } from '../../src/pods/tokens.ts';
import { podSecretSpec } from '../../src/pods/workload.ts';

const scope = { hostClusterName: 'east', nodeName: 'spillway-west' };

function context(mode: TokenMode, claims: Record<string, string> = {}): ForgeContext {
  return {
    ...scope,
    namespacePrefix: '',
    virtualOnlyLabelKeys: new Set(['type']),
    virtualTaintKeys: new Set(['virtual-kubelet.io/provider']),
    priorityClassExists: () => false,
    remoteNamespace: (ns) => `east-${ns}`,
    workload: {
      tokenMode: () => mode,
      externalServer: { host: '10.0.0.1', port: 6443 },
      remoteClaim: (_ns, name) => claims[name],
    },
  };
}

/** A pod as the host's admission leaves it: the kube-api-access volume, mounted in its container. */
function hostPod(extra: Partial<NonNullable<V1Pod['spec']>> = {}): V1Pod {
  return {
    metadata: {
      name: 'web-0',
      namespace: 'shop',
      uid: 'host-uid',
      labels: { app: 'web', 'controller-revision-hash': 'web-7d' },
      annotations: { note: 'say "hi"\n' },
    },
    spec: {
      nodeName: 'spillway-west',
      serviceAccountName: 'web',
      containers: [
        {
          name: 'main',
          image: 'busybox',
          env: [
            { name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
            { name: 'POD_NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
            { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
            { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
            { name: 'SA', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
            { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
          ],
          volumeMounts: [
            { name: 'kube-api-access-abc', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' },
            { name: 'info', mountPath: '/etc/podinfo' },
          ],
        },
      ],
      volumes: [
        {
          name: 'kube-api-access-abc',
          projected: {
            defaultMode: 420,
            sources: [
              { serviceAccountToken: { path: 'token', expirationSeconds: 3607 } },
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
              {
                downwardAPI: {
                  items: [{ path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } }],
                },
              },
            ],
          },
        },
        {
          name: 'info',
          downwardAPI: {
            defaultMode: 0o644,
            items: [
              { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
              { path: 'uid', fieldRef: { fieldPath: 'metadata.uid' }, mode: 0o400 },
              { path: 'cpu', resourceFieldRef: { containerName: 'main', resource: 'limits.cpu' } },
            ],
          },
        },
      ],
      ...extra,
    },
  };
}

const env = (pod: V1Pod) =>
  Object.fromEntries((pod.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

describe('service-account token modes', () => {
  it('host: the token comes from the pod Secret at the same path, the CA is the reflected copy, the API is the host’s', () => {
    const delegate = delegatePod(hostPod(), context('host'));
    const access = delegate.spec?.volumes?.find((v) => v.name === 'kube-api-access-abc');
    expect(access?.projected?.sources).toEqual([
      { secret: { name: 'web-0.pod.east.spillway-west', items: [{ key: 'token-0', path: 'token' }] } },
      {
        configMap: {
          name: 'kube-root-ca.crt.east.spillway-west',
          items: [{ key: 'ca.crt', path: 'ca.crt' }],
        },
      },
      { secret: { name: 'web-0.pod.east.spillway-west', items: [{ key: 'downward-0', path: 'namespace' }] } },
    ]);
    expect(access?.projected?.defaultMode).toBe(420);
    expect(delegate.spec?.containers[0]?.volumeMounts?.[0]?.mountPath).toBe(
      '/var/run/secrets/kubernetes.io/serviceaccount',
    );
    expect(delegate.spec?.automountServiceAccountToken).toBe(false);
    expect(delegate.spec?.serviceAccountName).toBeUndefined();
    expect(env(delegate)).toMatchObject({
      KUBERNETES_SERVICE_HOST: '10.0.0.1',
      KUBERNETES_SERVICE_PORT: '6443',
      KUBERNETES_PORT_443_TCP: 'tcp://10.0.0.1:6443',
    });
    expect(delegate.spec?.hostAliases).toEqual([
      {
        ip: '10.0.0.1',
        hostnames: [
          'kubernetes',
          'kubernetes.default',
          'kubernetes.default.svc',
          'kubernetes.default.svc.cluster.local',
        ],
      },
    ]);
    // The CA is reflected like any ConfigMap the pod uses.
    expect(delegateReferences(hostPod().spec, 'host').map((r) => r.name)).toContain('kube-root-ca.crt');
  });

  it('remote: the token volumes stay for the remote kubelet, with the remote ServiceAccount of the same name', () => {
    const delegate = delegatePod(hostPod(), context('remote'));
    expect(delegate.spec?.serviceAccountName).toBe('web');
    expect(delegate.spec?.automountServiceAccountToken).toBeUndefined();
    const access = delegate.spec?.volumes?.find((v) => v.name === 'kube-api-access-abc');
    expect(access).toEqual(hostPod().spec?.volumes?.[0]);
    expect(env(delegate).KUBERNETES_SERVICE_HOST).toBeUndefined();
    expect(delegateReferences(hostPod().spec, 'remote').map((r) => r.name)).not.toContain('kube-root-ca.crt');
  });

  it('none: no token, the remote namespace’s default account', () => {
    const delegate = delegatePod(hostPod(), context('none'));
    expect(delegate.spec?.volumes?.some((v) => v.name === 'kube-api-access-abc')).toBe(false);
    expect(delegate.spec?.containers[0]?.volumeMounts).toEqual([{ name: 'info', mountPath: '/etc/podinfo' }]);
    expect(delegate.spec?.automountServiceAccountToken).toBe(false);
    expect(delegate.spec?.serviceAccountName).toBeUndefined();
  });

  it('a pod’s own KUBERNETES_SERVICE_HOST wins', () => {
    const pod = hostPod();
    pod.spec?.containers[0]?.env?.push({ name: 'KUBERNETES_SERVICE_HOST', value: 'mine' });
    expect(env(delegatePod(pod, context('host'))).KUBERNETES_SERVICE_HOST).toBe('mine');
  });

  it('the choice: annotation, default, and refusals that name their cause', () => {
    const policy: TokenPolicy = { defaultMode: 'none', allowRemote: false, maxTokenAgeMs: 86_400_000 };
    const annotated = (value: string) => ({ 'spillway.dev/service-account-api': value });
    expect(tokenChoice(undefined, policy)).toEqual({ mode: 'none' });
    expect(tokenChoice(annotated('host'), policy)).toMatchObject({
      refusal: { reason: 'HostAPIUnavailable' },
    });
    expect(tokenChoice(annotated('remote'), policy)).toMatchObject({
      refusal: { reason: 'RemoteServiceAccountNotAllowed' },
    });
    expect(tokenChoice(annotated('bogus'), policy)).toMatchObject({
      refusal: { reason: 'InvalidServiceAccountAPI' },
    });
    const open = { ...policy, allowRemote: true, externalServer: { host: 'h', port: 443 } };
    expect(tokenChoice(annotated('host'), open)).toEqual({ mode: 'host' });
    expect(tokenChoice(annotated('remote'), open)).toEqual({ mode: 'remote' });
  });
});

describe('downward API', () => {
  it('env resolves host-only fields to the host pod’s values; status and resource fields stay remote', () => {
    expect(env(delegatePod(hostPod(), context('none')))).toEqual({
      POD_UID: 'host-uid',
      POD_NS: 'shop',
      APP: 'web',
      NODE: 'spillway-west',
      SA: 'web',
      IP: { fieldRef: { fieldPath: 'status.podIP' } },
      CPU: { resourceFieldRef: { resource: 'limits.cpu' } },
    });
  });

  it('volumes take host-only items from the pod Secret and keep resource items', () => {
    const delegate = delegatePod(hostPod(), context('none'));
    expect(delegate.spec?.volumes?.find((v) => v.name === 'info')).toEqual({
      name: 'info',
      projected: {
        defaultMode: 0o644,
        sources: [
          {
            secret: {
              name: 'web-0.pod.east.spillway-west',
              items: [
                { key: 'downward-0', path: 'labels' },
                { key: 'downward-1', path: 'uid', mode: 0o400 },
              ],
            },
          },
          {
            downwardAPI: {
              items: [{ path: 'cpu', resourceFieldRef: { containerName: 'main', resource: 'limits.cpu' } }],
            },
          },
        ],
      },
    });
    const secret = podSecretSpec(hostPod(), scope, 'east-shop', 'none');
    expect(secret?.downward).toEqual({
      'downward-0': 'app="web"\ncontroller-revision-hash="web-7d"',
      'downward-1': 'host-uid',
    });
    expect(secret?.tokens).toEqual([]);
    // Mode host adds the token and the token volume's namespace file, with keys in the same order.
    const host = podSecretSpec(hostPod(), scope, 'east-shop', 'host');
    expect(host?.tokens).toEqual([{ key: 'token-0', expirationSeconds: 3607 }]);
    expect(host?.downward).toEqual({
      'downward-0': 'shop',
      'downward-1': 'app="web"\ncontroller-revision-hash="web-7d"',
      'downward-2': 'host-uid',
    });
  });

  it('formats maps as the kubelet does (sorted, Go quoting)', () => {
    expect(formatMap({ b: '2', a: 'x"y\\z\n\u0001é' })).toBe('a="x\\"y\\\\z\\n\\x01é"\nb="2"');
    expect(goQuote('\u00a0')).toBe('"\\u00a0"');
    expect(hostFieldValue(hostPod(), "metadata.annotations['missing']")).toBe('');
    expect(hostFieldValue(hostPod(), 'metadata.annotations')).toBe('note="say \\"hi\\"\\n"');
  });

  it('a pod with nothing host-only needs no Secret', () => {
    const plain: V1Pod = {
      metadata: { name: 'p', namespace: 'n', uid: 'u' },
      spec: { containers: [{ name: 'c' }] },
    };
    expect(podSecretSpec(plain, scope, 'n', 'host')).toBeUndefined();
  });
});

describe('claims', () => {
  it('point at the remote claims Spillway provisioned; generic ephemeral volumes become claims', () => {
    const delegate = delegatePod(
      hostPod({
        volumes: [
          { name: 'data', persistentVolumeClaim: { claimName: 'data-web-0', readOnly: true } },
          {
            name: 'scratch',
            ephemeral: { volumeClaimTemplate: { spec: { accessModes: ['ReadWriteOnce'] } } },
          },
        ],
      }),
      context('none', {
        'data-web-0': 'data-web-0.east.spillway-west',
        'web-0-scratch': 'web-0-scratch.east.spillway-west',
      }),
    );
    expect(delegate.spec?.volumes).toEqual([
      { name: 'data', persistentVolumeClaim: { claimName: 'data-web-0.east.spillway-west', readOnly: true } },
      { name: 'scratch', persistentVolumeClaim: { claimName: 'web-0-scratch.east.spillway-west' } },
    ]);
  });
});

describe('the pod Secret’s plan', () => {
  const desired = podSecretSpec(hostPod(), scope, 'east-shop', 'host');
  const now = 1_000_000;
  const issued = {
    resourceVersion: '5',
    namespace: 'east-shop',
    name: 'web-0.pod.east.spillway-west',
    uid: 's',
    hostPodUid: 'host-uid',
    downwardHash: desired?.downwardHash ?? '',
    tokens: {
      'token-0': { issuedAt: now - 1000, expiresAt: now - 1000 + 3_607_000, expirationSeconds: 3607 },
    },
  };
  const options = { now, maxTokenAgeMs: 86_400_000 };

  it('creates it with every token', () => {
    expect(planPodSecret('host-uid', desired as never, undefined, options).write).toMatchObject({
      issue: ['token-0'],
      downwardChanged: true,
    });
  });

  it('keeps a fresh one, and says when the token is due (80 % of its lifetime)', () => {
    const plan = planPodSecret('host-uid', desired as never, issued, options);
    expect(plan.write).toBeUndefined();
    expect(plan.nextRefreshAt).toBe(now - 1000 + 0.8 * 3_607_000);
  });

  it('refreshes a token that is due, or older than the maximum age', () => {
    const due = refreshAt(issued.tokens['token-0'], 86_400_000);
    expect(
      planPodSecret('host-uid', desired as never, issued, { ...options, now: due }).write?.issue,
    ).toEqual(['token-0']);
    expect(
      planPodSecret('host-uid', desired as never, issued, { now: now + 15_000, maxTokenAgeMs: 10_000 }).write
        ?.issue,
    ).toEqual(['token-0']);
  });

  it('rewrites the files when the host pod’s labels change, without a new token', () => {
    const plan = planPodSecret('host-uid', desired as never, { ...issued, downwardHash: 'old' }, options);
    expect(plan.write).toMatchObject({ issue: [], downwardChanged: true });
  });

  it('an earlier namesake’s Secret goes first', () => {
    expect(
      planPodSecret('host-uid', desired as never, { ...issued, hostPodUid: 'other' }, options).stale,
    ).toBeDefined();
  });
});

describe('changes of a running pod', () => {
  const pod = (extra: Partial<NonNullable<V1Pod['spec']>>): V1Pod => ({
    metadata: { name: 'p' },
    spec: { containers: [{ name: 'main', resources: { requests: { cpu: '500m' } } }], ...extra },
  });

  it('adds only the ephemeral containers the delegate lacks', () => {
    const desired = pod({ ephemeralContainers: [{ name: 'debug-1' }, { name: 'debug-2' }] });
    const current = pod({ ephemeralContainers: [{ name: 'debug-1' }] });
    expect(ephemeralToAdd(desired, current).map((c) => c.name)).toEqual(['debug-2']);
  });

  it('resizes containers whose resources changed, comparing quantities', () => {
    expect(
      resizeOf(pod({}), pod({ containers: [{ name: 'main', resources: { requests: { cpu: '0.5' } } }] })),
    ).toEqual([]);
    expect(
      resizeOf(pod({ containers: [{ name: 'main', resources: { requests: { cpu: '1' } } }] }), pod({})),
    ).toEqual([{ name: 'main', init: false, resources: { requests: { cpu: '1' } } }]);
  });
});
