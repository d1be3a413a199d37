// Service-account tokens and the downward API on real clusters (KWOK nodes). A pod on the virtual node
// gets, in the remote, a token of its host ServiceAccount in its own Secret: the host's TokenReview says
// it is system:serviceaccount:<ns>:<sa>, bound to the host pod's name and UID; it is refreshed; it stops
// authenticating once the host pod is gone, and its Secret goes too. Downward-API values are the host
// pod's. The choice per pod (remote, none) and its refusals are what users see on the host pod.
import {
  AuthenticationV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  type V1Secret,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import { condition, kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import { pinnedSpec, tearDownVirtualNode, waitForNodeReady } from '../support/workloads.ts';

const suffix = uniqueSuffix();
const remoteName = `tokens-${suffix}`;
const nodeName = `spillway-tokens-${suffix}`;
const namespace = `tokens-${suffix}`;
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
const authentication = host.kubeConfig.makeApiClient(AuthenticationV1Api);
const secretName = (pod: string) => `${pod}.pod.host.${nodeName}`;
let spillway: Spillway;

const readSecret = (pod: string) =>
  remote.core.readNamespacedSecret({ name: secretName(pod), namespace }).catch(() => undefined);

async function review(token: string) {
  const answer = await authentication.createTokenReview({ body: { spec: { token } } });
  return answer.status;
}

function tokenOf(secret: V1Secret | undefined): string | undefined {
  const data = secret?.data?.['token-0'];
  return data ? Buffer.from(data, 'base64').toString('utf8') : undefined;
}

async function createPod(
  name: string,
  spec: Partial<V1Pod['spec']> = {},
  annotations: Record<string, string> = {},
) {
  await host.core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name, labels: { app: name, tier: 'web' }, annotations },
      spec: { ...pinnedSpec(remoteName), ...spec },
    },
  });
}

const delegateOf = (name: string) =>
  waitFor(`delegate of ${name}`, () =>
    remote.core.readNamespacedPod({ name, namespace }).catch(() => undefined),
  );

beforeAll(async () => {
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  await host.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'builder' } } });
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    remotes: [{ name: remoteName, kubeconfig: clusters.remote.kubeconfig, nodeName }],
    extra: {
      // What delegates would dial (nothing here dials it: the address only lands in their env).
      host: { kubeconfig: clusters.host.kubeconfig, externalServer: 'https://127.0.0.1:6443' },
      // A short maximum age, so a refresh happens within the test (the default is a kubelet's 24 h).
      pods: { serviceAccounts: { maxTokenAgeSeconds: 15, allowRemote: true } },
    },
  });
  await waitForNodeReady(host, nodeName);
});

afterAll(async () => {
  await tearDownVirtualNode({ host, remote, spillway, nodeName, namespaces: [namespace] });
});

describe('service-account tokens of the host', () => {
  let hostPod: V1Pod;
  let firstToken: string;

  it('puts a token of the host ServiceAccount, bound to the host pod, in the pod’s Secret in the remote', async () => {
    await createPod('api', { serviceAccountName: 'builder' });
    const delegate = await delegateOf('api');
    hostPod = await host.core.readNamespacedPod({ name: 'api', namespace });
    const secret = await waitFor('the pod Secret', () => readSecret('api'));
    expect(secret.metadata?.labels).toMatchObject({
      'spillway.dev/managed-by': 'spillway',
      'spillway.dev/host-cluster': 'host',
      'spillway.dev/virtual-node': nodeName,
      'spillway.dev/host-pod-uid': hostPod.metadata?.uid,
      'spillway.dev/pod-secret': 'true',
    });
    firstToken = tokenOf(secret) as string;
    const status = await review(firstToken);
    expect(status?.authenticated).toBe(true);
    expect(status?.user?.username).toBe(`system:serviceaccount:${namespace}:builder`);
    expect(status?.user?.extra?.['authentication.kubernetes.io/pod-name']).toEqual(['api']);
    expect(status?.user?.extra?.['authentication.kubernetes.io/pod-uid']).toEqual([hostPod.metadata?.uid]);
    // Mounted where the host's token was, with the host's CA and namespace beside it.
    const access = delegate.spec?.volumes?.find((v) => v.name.startsWith('kube-api-access-'));
    expect(access?.projected?.sources).toEqual([
      { secret: { name: secretName('api'), items: [{ key: 'token-0', path: 'token' }] } },
      {
        configMap: {
          name: `kube-root-ca.crt.host.${nodeName}`,
          items: [{ key: 'ca.crt', path: 'ca.crt' }],
        },
      },
      { secret: { name: secretName('api'), items: [{ key: 'downward-0', path: 'namespace' }] } },
    ]);
    expect(Buffer.from(secret.data?.['downward-0'] ?? '', 'base64').toString()).toBe(namespace);
    const ca = await remote.core.readNamespacedConfigMap({
      name: `kube-root-ca.crt.host.${nodeName}`,
      namespace,
    });
    const hostCa = await host.core.readNamespacedConfigMap({ name: 'kube-root-ca.crt', namespace });
    expect(ca.data?.['ca.crt']).toBe(hostCa.data?.['ca.crt']);
    const env = Object.fromEntries((delegate.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: '6443' });
    expect(delegate.spec?.automountServiceAccountToken).toBe(false);
  });

  it('refreshes the token before it is due', async () => {
    const refreshed = await waitFor(
      'a new token',
      async () => {
        const token = tokenOf(await readSecret('api'));
        return token && token !== firstToken ? token : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
    const status = await review(refreshed);
    expect(status?.authenticated).toBe(true);
    expect(status?.user?.extra?.['authentication.kubernetes.io/pod-uid']).toEqual([hostPod.metadata?.uid]);
  });

  it('stops authenticating once the host pod is deleted, and its Secret goes with it', async () => {
    const last = tokenOf(await readSecret('api')) as string;
    await host.core.deleteNamespacedPod({ name: 'api', namespace });
    await waitFor('the host pod gone', async () =>
      (await host.core.readNamespacedPod({ name: 'api', namespace }).catch(() => undefined))
        ? undefined
        : true,
    );
    // The API server caches a successful authentication for 10 s; then the binding to the pod is checked again.
    const refused = await waitFor(
      'the token refused',
      async () => {
        const status = await review(last);
        return status?.authenticated ? undefined : status;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    expect(refused.error).toMatch(/invalidated|not found/);
    expect((await review(firstToken))?.authenticated ?? false).toBe(false);
    await waitFor('the pod Secret gone', async () => ((await readSecret('api')) ? undefined : true));
  });
});

describe('a projected token of the pod’s own', () => {
  it('has the audience and lifetime its source asks for, at its path', async () => {
    await createPod('vault', {
      containers: [
        {
          name: 'main',
          image: 'busybox',
          volumeMounts: [{ name: 'vault-token', mountPath: '/var/run/vault' }],
        },
      ],
      volumes: [
        {
          name: 'vault-token',
          projected: {
            sources: [{ serviceAccountToken: { path: 'token', audience: 'vault', expirationSeconds: 7200 } }],
          },
        },
      ],
    });
    const delegate = await delegateOf('vault');
    const volume = delegate.spec?.volumes?.find((v) => v.name === 'vault-token');
    const item = volume?.projected?.sources?.[0]?.secret?.items?.[0];
    expect(item?.path).toBe('token');
    const secret = await waitFor('the pod Secret', () => readSecret('vault'));
    const token = Buffer.from(secret.data?.[item?.key ?? ''] ?? '', 'base64').toString('utf8');
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
    expect(claims.aud).toEqual(['vault']);
    expect(claims.exp - claims.iat).toBe(7200);
    // For the audience it names, and not for the host API server's.
    const forVault = await authentication.createTokenReview({
      body: { spec: { token, audiences: ['vault'] } },
    });
    expect(forVault.status?.authenticated).toBe(true);
    expect(forVault.status?.user?.username).toBe(`system:serviceaccount:${namespace}:default`);
    expect((await review(token))?.authenticated ?? false).toBe(false);
  });
});

describe('the choice per pod', () => {
  it('remote: the remote ServiceAccount of the same name, mounted by the remote', async () => {
    await remote.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'builder' } } });
    await createPod(
      'local-api',
      { serviceAccountName: 'builder' },
      { 'spillway.dev/service-account-api': 'remote' },
    );
    const delegate = await delegateOf('local-api');
    expect(delegate.spec?.serviceAccountName).toBe('builder');
    expect(
      delegate.spec?.volumes?.find((v) => v.name.startsWith('kube-api-access-'))?.projected?.sources?.[0],
    ).toEqual({
      serviceAccountToken: { path: 'token', expirationSeconds: 3607 },
    });
    expect(await readSecret('local-api')).toBeUndefined();
  });

  it('none: no token at all', async () => {
    await createPod('quiet', {}, { 'spillway.dev/service-account-api': 'none' });
    const delegate = await delegateOf('quiet');
    expect(delegate.spec?.volumes ?? []).toEqual([]);
    expect(delegate.spec?.automountServiceAccountToken).toBe(false);
  });

  it('a choice that is not valid is refused with a reason on the host pod', async () => {
    await createPod('odd', {}, { 'spillway.dev/service-account-api': 'both' });
    const pod = await waitFor('the refusal', async () => {
      const current = await host.core.readNamespacedPod({ name: 'odd', namespace });
      return condition(current, 'spillway.dev/Delegated')?.reason === 'InvalidServiceAccountAPI'
        ? current
        : undefined;
    });
    expect(condition(pod, 'spillway.dev/Delegated')?.message).toContain(
      '"both" is not one of host, remote, none',
    );
  });
});

describe('downward API', () => {
  it('gives env and volumes the host pod’s values, not the delegate’s', async () => {
    await createPod('info', {
      containers: [
        {
          name: 'main',
          image: 'busybox',
          env: [
            { name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
            { name: 'TIER', valueFrom: { fieldRef: { fieldPath: "metadata.labels['tier']" } } },
            { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
            { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          ],
          volumeMounts: [{ name: 'info', mountPath: '/etc/podinfo' }],
        },
      ],
      volumes: [
        {
          name: 'info',
          downwardAPI: {
            items: [
              { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
              { path: 'uid', fieldRef: { fieldPath: 'metadata.uid' } },
            ],
          },
        },
      ],
    });
    const delegate = await delegateOf('info');
    const pod = await host.core.readNamespacedPod({ name: 'info', namespace });
    const env = Object.fromEntries(
      (delegate.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]),
    );
    expect(env.POD_UID).toBe(pod.metadata?.uid);
    expect(env.TIER).toBe('web');
    expect(env.NODE).toBe(nodeName);
    expect(env.IP).toEqual({ fieldRef: { apiVersion: 'v1', fieldPath: 'status.podIP' } });
    // The files come from the pod's Secret, at the paths the pod asked for.
    const items =
      delegate.spec?.volumes?.find((v) => v.name === 'info')?.projected?.sources?.[0]?.secret?.items ?? [];
    const keyOf = (path: string) => items.find((i) => i.path === path)?.key ?? '';
    const secret = await waitFor('the pod Secret', () => readSecret('info'));
    const file = (current: V1Secret | undefined, path: string) =>
      Buffer.from(current?.data?.[keyOf(path)] ?? '', 'base64').toString();
    // The host pod's own labels (the host's binding added its node's topology labels), not the delegate's marks.
    const labelsFile = (labels: Record<string, string>) =>
      Object.keys(labels)
        .sort()
        .map((k) => `${k}="${labels[k]}"`)
        .join('\n');
    expect(file(secret, 'labels')).toBe(labelsFile(pod.metadata?.labels ?? {}));
    expect(file(secret, 'labels')).not.toContain('spillway.dev/');
    expect(file(secret, 'uid')).toBe(pod.metadata?.uid);
    // The host pod's labels change: the file follows.
    await host.core.patchNamespacedPod(
      { name: 'info', namespace, body: { metadata: { labels: { release: 'blue' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const relabelled = labelsFile({ ...pod.metadata?.labels, release: 'blue' });
    let seen = '';
    await waitFor('the labels file updated', async () => {
      seen = file(await readSecret('info'), 'labels');
      return seen === relabelled ? true : undefined;
    }).catch(() => {});
    expect(seen).toBe(relabelled);
  });
});
