// Workloads on real containers, through the host and its virtual node: the service-account token a
// process reads authenticates against the host as the host pod; downward-API files and env are the host
// pod's; a host Service's endpoints, reflected into the remote, are real pod addresses a delegate
// reaches. (kubectl debug and resize: real-debug-resize.test.ts.)
import {
  AuthenticationV1Api,
  DiscoveryV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1PodSpec,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusters } from '../cluster/fixture.ts';
import { waitFor } from '../support/wait.ts';
import { BUSYBOX, NETEXEC, type RealNodeEnv, realNodeEnv } from './support.ts';

let env: RealNodeEnv;
const ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

const sleeper = (extra: Partial<V1PodSpec['containers'][number]> = {}): Partial<V1PodSpec> => ({
  containers: [{ name: 'main', image: BUSYBOX, command: ['sleep', '3600'], ...extra }],
});

beforeAll(async () => {
  env = await realNodeEnv('rwork', {
    // The address delegates would dial for the host API (nothing here dials it: no route leaves the
    // real node's network namespace); the test reads the token and asks the host itself.
    host: { kubeconfig: clusters.host.kubeconfig, externalServer: 'https://127.0.0.1:6443' },
    // A token older than this is requested again (a kubelet's 24 h would be beyond any test).
    pods: { serviceAccounts: { maxTokenAgeSeconds: 30 } },
  });
  await env.createPod('api', sleeper(), { tier: 'backend' });
  await env.createPod(
    'info',
    {
      hostname: 'info-host',
      subdomain: 'peers',
      containers: [
        {
          name: 'main',
          image: BUSYBOX,
          command: ['sleep', '3600'],
          env: [
            { name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
            { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
            { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
            { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
            { name: 'ACCOUNT', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
            { name: 'CPU_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1m' } } },
          ],
          resources: { limits: { cpu: '250m', memory: '32Mi' } },
          volumeMounts: [{ name: 'podinfo', mountPath: '/etc/podinfo' }],
        },
      ],
      volumes: [
        {
          name: 'podinfo',
          downwardAPI: {
            items: [
              { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
              { path: 'uid', fieldRef: { fieldPath: 'metadata.uid' } },
              { path: 'name', fieldRef: { fieldPath: 'metadata.name' } },
              {
                path: 'cpu',
                resourceFieldRef: { containerName: 'main', resource: 'limits.cpu', divisor: '1m' },
              },
            ],
          },
        },
      ],
    },
    { tier: 'info' },
  );
  await env.createPod('web', NETEXEC);
  await env.host.core.createNamespacedService({
    namespace: env.namespace,
    body: {
      metadata: { name: 'web' },
      spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    },
  });
  for (const pod of ['api', 'info', 'web']) await env.waitReady(pod);
});

afterAll(async () => {
  await env?.cleanup();
});

const exec = async (pod: string, script: string) =>
  (await env.kubectl('host', ['exec', pod, '--', 'sh', '-c', script])).stdout;
const review = async (token: string) =>
  (
    await env.host.kubeConfig
      .makeApiClient(AuthenticationV1Api)
      .createTokenReview({ body: { spec: { token } } })
  ).status;
/** The token the api pod's processes read first. */
let firstToken = '';

describe('a service-account token on a real container', { tags: ['real-node'] }, () => {
  it('is the host ServiceAccount’s, bound to the host pod, where in-cluster clients read it', async () => {
    firstToken = await exec('api', `cat ${ACCOUNT}/token`);
    const status = await review(firstToken);
    const hostPod = await env.readPod('host', 'api');
    expect(status?.authenticated).toBe(true);
    expect(status?.user?.username).toBe(`system:serviceaccount:${env.namespace}:default`);
    expect(status?.user?.extra?.['authentication.kubernetes.io/pod-name']).toEqual(['api']);
    expect(status?.user?.extra?.['authentication.kubernetes.io/pod-uid']).toEqual([hostPod.metadata?.uid]);
    const hostCa = await env.host.core.readNamespacedConfigMap({
      name: 'kube-root-ca.crt',
      namespace: env.namespace,
    });
    expect(await exec('api', `cat ${ACCOUNT}/ca.crt`)).toBe(hostCa.data?.['ca.crt']);
    expect(await exec('api', `cat ${ACCOUNT}/namespace`)).toBe(env.namespace);
    expect(await exec('api', 'echo "$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"')).toBe(
      '127.0.0.1:6443\n',
    );
    expect(await exec('api', 'grep -c "kubernetes.default.svc" /etc/hosts')).toBe('1\n');
  });
});

describe('the downward API on a real container', { tags: ['real-node'] }, () => {
  it('shows the host pod’s identity in env and files, and the remote’s status and resources', async () => {
    const hostPod = await env.readPod('host', 'info');
    const delegate = await env.readPod('remote', 'info');
    expect(delegate.metadata?.uid).not.toBe(hostPod.metadata?.uid);
    expect(await exec('info', 'echo "$POD_UID $POD_NAMESPACE $POD_IP $CPU_LIMIT"')).toBe(
      `${hostPod.metadata?.uid} ${env.namespace} ${hostPod.status?.podIP} 250\n`,
    );
    // The node the container really runs on (the real node is named and addressed 127.0.0.1).
    expect(await exec('info', 'echo "$HOST_IP"')).toBe(`${delegate.status?.hostIP}\n`);
    expect(delegate.status?.hostIP).toBe('127.0.0.1');
    expect(
      await exec('info', 'cat /etc/podinfo/uid; echo; cat /etc/podinfo/name; echo; cat /etc/podinfo/cpu'),
    ).toBe(`${hostPod.metadata?.uid}\ninfo\n250`);
    const labels = await exec('info', 'cat /etc/podinfo/labels');
    expect(labels).toContain('app="info"');
    expect(labels).toContain('tier="info"');
    expect(labels).not.toContain('spillway.dev/');
    expect(await exec('info', 'echo "$NODE $ACCOUNT"; hostname; grep -c "info-host.peers." /etc/hosts')).toBe(
      `${env.nodeName} default\ninfo-host\n1\n`,
    );
  });
});

describe('the kubelet’s Secret-volume sync on a real container', { tags: ['real-node'] }, () => {
  it('carries the host pod’s new labels and a refreshed token into the files, as for its own', async () => {
    await env.host.core.patchNamespacedPod(
      { name: 'info', namespace: env.namespace, body: { metadata: { labels: { release: 'blue' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    // The kubelet rewrites Secret volumes on its sync period (about a minute, plus its cache); the token
    // is requested again every 30 s. The two pods' syncs are awaited together.
    const [, token] = await Promise.all([
      waitFor(
        'the labels file updated in the container',
        async () =>
          (await exec('info', 'cat /etc/podinfo/labels')).includes('release="blue"') ? true : undefined,
        { timeoutMs: 180_000, intervalMs: 2000 },
      ),
      waitFor(
        'a new token in the container',
        async () => {
          const current = await exec('api', `cat ${ACCOUNT}/token`);
          return current !== firstToken ? current : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 2000 },
      ),
    ]);
    expect((await review(token))?.user?.extra?.['authentication.kubernetes.io/pod-name']).toEqual(['api']);
  });
});

describe('a host Service on a real pod network', { tags: ['real-node'] }, () => {
  /** The ready addresses of a Service's EndpointSlices on one side. */
  const endpoints = async (discovery: DiscoveryV1Api) =>
    (
      await discovery.listNamespacedEndpointSlice({
        namespace: env.namespace,
        labelSelector: 'kubernetes.io/service-name=web',
      })
    ).items
      .flatMap((slice) => slice.endpoints ?? [])
      .filter((e) => e.conditions?.ready)
      .flatMap((e) => e.addresses);

  it('lists the delegate’s real IP on the host, reflected into the remote, where a delegate reaches it', async () => {
    const hostDiscovery = env.host.kubeConfig.makeApiClient(DiscoveryV1Api);
    const remoteDiscovery = env.remote.kubeConfig.makeApiClient(DiscoveryV1Api);
    const delegate = await env.readPod('remote', 'web');
    const ip = delegate.status?.podIP as string;
    // An address the real node's CNI bridge gave the container, mirrored to the host pod.
    expect(ip).toMatch(/^10\.89\.0\.\d+$/);
    expect((await env.readPod('host', 'web')).status?.podIP).toBe(ip);
    await waitFor('the delegate in the host’s EndpointSlice', async () =>
      (await endpoints(hostDiscovery)).includes(ip) ? true : undefined,
    );
    const copy = await waitFor('the Service reflected into the remote', async () =>
      env.remote.core.readNamespacedService({ name: 'web', namespace: env.namespace }).catch(() => undefined),
    );
    expect(copy.spec?.selector).toBeUndefined();
    const reflected = await waitFor('the endpoints reflected into the remote', async () => {
      const addresses = await endpoints(remoteDiscovery);
      return addresses.length > 0 ? addresses : undefined;
    });
    expect(reflected).toEqual([ip]);
    // A delegate reaches the reflected endpoint over the remote's pod network, exactly as the same
    // command run directly in the remote does. (By name it cannot here: the real node runs no cluster
    // DNS and no kube-proxy; see the README.)
    const fetch = ['exec', 'api', '--', 'wget', '-qO-', `http://${reflected[0]}:8080/hostname`];
    const [host, remote] = [await env.kubectl('host', fetch), await env.kubectl('remote', fetch)];
    expect(host.stdout).toBe('web');
    expect(host.stdout).toBe(remote.stdout);
  });
});

describe('a deleted host pod’s token', { tags: ['real-node'] }, () => {
  it('stops authenticating once the host pod is gone', async () => {
    const token = await exec('api', `cat ${ACCOUNT}/token`);
    expect((await review(token))?.authenticated).toBe(true);
    // sleep as PID 1 ignores SIGTERM: a short grace period, not the default 30 s.
    await env.host.core.deleteNamespacedPod({ name: 'api', namespace: env.namespace, gracePeriodSeconds: 1 });
    // The host API server checks the bound pod (a success is cached for up to 10 s).
    const refused = await waitFor(
      'the token refused',
      async () => {
        const status = await review(token);
        return status?.authenticated ? undefined : status;
      },
      { timeoutMs: 120_000 },
    );
    expect(refused?.error).toMatch(/invalidated|not found/);
  });
});
