// What it takes to use Spillway's kubelet port: running a command or opening a port needs `create`
// on nodes/proxy whatever the HTTP method (a WebSocket upgrade is a GET, and `get` alone must not run
// commands); an anonymous caller gets 401 for every path and learns nothing about which pods exist; a
// malformed path is a 400, never a 500; and a flood of bogus tokens costs the host API server at most
// the configured rate of TokenReviews while `kubectl exec` through the API server keeps working.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { tokenReviews } from '../../src/kubelet/telemetry.ts';
import { clusters } from '../cluster/fixture.ts';
import { freePort } from '../cluster/ports.ts';
import {
  type Credentials,
  kubeconfigCredentials,
  kubeletGet,
  kubeletWebSocket,
} from '../support/kubelet-client.ts';
import {
  createKubeletTestNamespace,
  kubeletTestNames,
  removeKubeletTestNamespace,
  runPods,
} from '../support/kubelet-fixture.ts';
import { startSpillway } from '../support/spillway.ts';

const test = kubeletTestNames('authz');
const { namespace, nodeName, suffix, host } = test;
const failuresPerSecond = 2;
const failureBurst = 10;
let spillway: Spillway;
let port: number;
let admin: Credentials;
let getter: Credentials;
let creator: Credentials;

async function serviceAccountWith(name: string, verbs: string): Promise<Credentials> {
  await host.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  const role = `${name}-${suffix}`;
  await clusters.kubectl('host', [
    'create',
    'clusterrole',
    role,
    `--verb=${verbs}`,
    '--resource=nodes/proxy',
    `--resource-name=${nodeName}`,
  ]);
  await clusters.kubectl('host', [
    'create',
    'clusterrolebinding',
    role,
    `--clusterrole=${role}`,
    `--serviceaccount=${namespace}:${name}`,
  ]);
  return {
    token: (await clusters.kubectl('host', ['create', 'token', name, '-n', namespace])).stdout.trim(),
  };
}

async function rejectedReviews(): Promise<number> {
  const values = (await tokenReviews.get()).values;
  return values.find((v) => v.labels.result === 'rejected')?.value ?? 0;
}

beforeAll(async () => {
  admin = await kubeconfigCredentials(clusters.host.kubeconfig);
  await createKubeletTestNamespace(test, { logs: '' });
  getter = await serviceAccountWith('getter', 'get');
  creator = await serviceAccountWith('creator', 'get,create');
  port = await freePort();
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    kubeletPort: port,
    kubelet: { authentication: { failuresPerSecond, failureBurst } },
    remotes: [test.remoteConfig],
  });
  await runPods(test, ['app'], 'authz');
});

afterAll(async () => {
  await removeKubeletTestNamespace(test, () => spillway?.stop());
  for (const name of ['getter', 'creator']) {
    await clusters.kubectl('host', ['delete', 'clusterrole,clusterrolebinding', `${name}-${suffix}`], {
      allowFailure: true,
    });
  }
});

const exec = (pod: string) => `/exec/${namespace}/${pod}/main?command=echo&command=hi&output=1`;
const attach = (pod: string) => `/attach/${namespace}/${pod}/main?output=1`;
const portForward = (pod: string) => `/portForward/${namespace}/${pod}?port=80`;

describe('exec, attach and port-forward need create', () => {
  it('refuses a get-only identity for WebSocket exec, attach and port-forward (403), but lets it read logs', async () => {
    for (const [path, protocol] of [
      [exec('app'), 'v5.channel.k8s.io'],
      [exec('app'), 'v4.channel.k8s.io'],
      [attach('app'), 'v5.channel.k8s.io'],
      [portForward('app'), 'v4.channel.k8s.io'],
    ] as const) {
      const refused = await kubeletWebSocket(port, path, protocol, getter);
      expect({ path, status: refused.status }).toEqual({ path, status: 403 });
      expect(refused.body).toContain('verb=create');
    }
    expect((await kubeletGet(port, `/containerLogs/${namespace}/app/main`, getter)).status).toBe(200);
  });

  it('runs a command for an identity with create, and for kubectl exec through the API server', async () => {
    const { ws, status } = await kubeletWebSocket(port, exec('app'), 'v5.channel.k8s.io', creator);
    expect(status).toBe(101);
    const output: Buffer[] = [];
    ws?.on('message', (message: Buffer) => {
      if (message[0] === 1) output.push(message.subarray(1));
    });
    await new Promise((resolve) => ws?.once('close', resolve));
    expect(Buffer.concat(output).toString()).toBe('hi\n');
    const viaApiServer = await clusters.kubectl('host', [
      '-n',
      namespace,
      'exec',
      'app',
      '--',
      'echo',
      'through',
    ]);
    expect(viaApiServer.stdout).toBe('through\n');
  });
});

describe('before anything else, authentication', () => {
  const paths = [
    `/containerLogs/${namespace}/app/main`,
    `/containerLogs/${namespace}/no-such-pod/main`,
    '/containerLogs/nowhere/nothing/main',
    exec('app'),
    exec('no-such-pod'),
    `/run/${namespace}/app/main?cmd=echo+hi`,
    portForward('no-such-pod'),
    '/pods',
    '/healthz',
    '/metrics/resource',
    '/stats/summary',
    '/no/such/route',
    '/containerLogs/%E0%A4%A/app/main',
  ];

  it('answers an anonymous caller 401 for every path, existing pod or not, with the same body', async () => {
    const bodies = new Set<string>();
    for (const path of paths) {
      for (const method of ['GET', 'POST']) {
        const answer = await kubeletGet(port, path, {}, {}, method);
        expect({ path, method, status: answer.status }).toEqual({ path, method, status: 401 });
        bodies.add(answer.body);
      }
      for (const protocol of ['v5.channel.k8s.io', 'v4.channel.k8s.io']) {
        const upgrade = await kubeletWebSocket(port, path, protocol);
        expect({ path, protocol, status: upgrade.status }).toEqual({ path, protocol, status: 401 });
        bodies.add(upgrade.body);
      }
    }
    expect([...bodies]).toEqual(['Unauthorized\n']);
  });

  it('answers a malformed path with 400 (never a 500), upgraded or not', async () => {
    for (const path of ['/containerLogs/%E0%A4%A/app/main', `/run/${namespace}/%zz/main?cmd=true`]) {
      const method = path.startsWith('/run') ? 'POST' : 'GET';
      expect({ path, status: (await kubeletGet(port, path, admin, {}, method)).status }).toEqual({
        path,
        status: 400,
      });
    }
    for (const path of [`/exec/${namespace}/%zz/main?command=true&output=1`, '/portForward/%E0%A4%A/app']) {
      expect({
        path,
        status: (await kubeletWebSocket(port, path, 'v4.channel.k8s.io', admin)).status,
      }).toEqual({
        path,
        status: 400,
      });
    }
  });

  it('reports a pod that is not here as 404 only to callers who may use a node here', async () => {
    expect((await kubeletGet(port, `/containerLogs/${namespace}/no-such-pod/main`, creator)).status).toBe(
      404,
    );
    const stranger = {
      token: (await clusters.kubectl('host', ['create', 'token', 'default', '-n', namespace])).stdout.trim(),
    };
    expect((await kubeletGet(port, `/containerLogs/${namespace}/no-such-pod/main`, stranger)).status).toBe(
      403,
    );
    expect((await kubeletGet(port, `/containerLogs/${namespace}/app/main`, stranger)).status).toBe(403);
  });
});

describe('a flood of bogus tokens', () => {
  it('costs at most the configured rate of TokenReviews and does not stop kubectl exec', async () => {
    // One bogus token sent many times is reviewed once.
    const before = await rejectedReviews();
    for (let i = 0; i < 20; i++) {
      expect((await kubeletGet(port, '/pods', { token: 'one-bogus-token' })).status).toBe(401);
    }
    expect((await rejectedReviews()) - before).toBe(1);

    const started = Date.now();
    const reviewsBefore = await rejectedReviews();
    const statuses = new Map<number, number>();
    let next = 0;
    const flood = Promise.all(
      Array.from({ length: 30 }, async () => {
        while (next < 300) {
          const i = next++;
          const { status } = await kubeletGet(port, `/containerLogs/${namespace}/app/main`, {
            token: `bogus-${suffix}-${i}`,
          });
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
      }),
    );
    // Meanwhile, through the API server (a client certificate: no TokenReview needed), and with a
    // token that was accepted before.
    const during = await clusters.kubectl('host', ['-n', namespace, 'exec', 'app', '--', 'echo', 'during']);
    expect(during.stdout).toBe('during\n');
    expect((await kubeletGet(port, `/containerLogs/${namespace}/app/main`, creator)).status).toBe(200);
    await flood;
    const seconds = (Date.now() - started) / 1000;
    const reviews = (await rejectedReviews()) - reviewsBefore;
    expect([...statuses.keys()].sort()).toEqual([401, 429]);
    // The source's budget: the burst, then the sustained rate (+1 for a refill in flight).
    expect(reviews).toBeLessThanOrEqual(failureBurst + Math.ceil(seconds * failuresPerSecond) + 1);
    expect(statuses.get(429)).toBeGreaterThan(0);
  });
});
