// Session limits that no single user can exhaust for everyone: 200 long-lived sessions through the
// host API server (which relays them all under its one client identity; the old per-client limit of
// 64 refused the 65th for everyone) leave exec and logs working for every user; a pod over its own
// limit is refused with 429 and the reason while other pods work; a direct caller of the kubelet port
// is limited as one user. Refusals are counted by limit. Then 200 real `kubectl logs -f` processes
// through the API server at once: every one follows (the API server multiplexes them over HTTP/2 on
// a few connections), and exec and logs still work for everyone.
//
// KWOK follows a log with one inotify instance per stream, and Linux allows 128 per user
// (fs.inotify.max_user_instances) for every cluster on the machine together: the `logs -f` part
// raises that limit while it runs and puts it back after (test/support/sysctl.ts).
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { appendFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Spillway } from '../../src/app.ts';
import { sessionsRefused } from '../../src/kubelet/telemetry.ts';
import { clusters } from '../cluster/fixture.ts';
import { kubectl } from '../cluster/kubectl.ts';
import { freePort } from '../cluster/ports.ts';
import { type Credentials, kubeconfigCredentials, kubeletWebSocket } from '../support/kubelet-client.ts';
import {
  createKubeletTestNamespace,
  kubeletTestNames,
  removeKubeletTestNamespace,
  runPods,
} from '../support/kubelet-fixture.ts';
import { criLine, type KwokFixture } from '../support/kwok.ts';
import { startSpillway } from '../support/spillway.ts';
import { raiseSysctl } from '../support/sysctl.ts';
import { tokenKubeconfig } from '../support/token-kubeconfig.ts';
import { waitFor } from '../support/wait.ts';

const test = kubeletTestNames('sess');
const { namespace, suffix, host } = test;
const SESSIONS = 200;
const PER_POD = 210;
const PER_CLIENT = 3;
let spillway: Spillway;
let port: number;
let admin: Credentials;
let user: Credentials;
let userKubeconfig: string;
let kwok: KwokFixture;

/** What `kubectl exec` opens: a v5 WebSocket to the host API server, which relays it to Spillway. */
function execThroughApiServer(pod: string, command: string[]): WebSocket {
  const server = new URL(host.kubeConfig.getCurrentCluster()?.server as string);
  const query = new URLSearchParams({ container: 'main', stdout: 'true' });
  for (const part of command) query.append('command', part);
  const ws = new WebSocket(
    `wss://${server.host}/api/v1/namespaces/${namespace}/pods/${pod}/exec?${query}`,
    ['v5.channel.k8s.io'],
    { cert: admin.cert, key: admin.key, rejectUnauthorized: false },
  );
  ws.on('error', () => {});
  return ws;
}

/**
 * Why a WebSocket exec was refused, as the client sees it: the API server accepts the WebSocket and
 * then reports the kubelet's refusal as the session's status (channel 3), or refuses the upgrade.
 */
function refusalOf(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => {
    let status = '';
    ws.on('message', (message: Buffer) => {
      if (message[0] === 3) status += message.subarray(1).toString();
    });
    ws.once('close', () => resolve(status));
    ws.once('unexpected-response', (_request, response) => {
      let body = `HTTP ${response.statusCode} `;
      response.on('data', (chunk: Buffer) => (body += chunk));
      response.on('end', () => resolve(body));
    });
  });
}

async function refusals(limit: string): Promise<number> {
  return (await sessionsRefused.get()).values
    .filter((v) => v.labels.limit === limit)
    .reduce((sum, v) => sum + v.value, 0);
}

/** kubectl as the admin (its client certificate), or as the other user (its token only). */
const kubectlAs = (args: string[], as: 'admin' | 'user' = 'admin') =>
  kubectl(
    clusters.kubectlBinary,
    as === 'admin' ? clusters.host.kubeconfig : userKubeconfig,
    ['-n', namespace, ...args],
    {
      allowFailure: true,
    },
  );

beforeAll(async () => {
  admin = await kubeconfigCredentials(clusters.host.kubeconfig);
  kwok = await createKubeletTestNamespace(test, { logs: criLine(new Date(), 'stdout', 'started') });
  // Another user: logs and exec on this namespace's pods (through the API server), and the node's
  // kubelet API (directly).
  await host.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'user' } } });
  await clusters.kubectl('host', [
    '-n',
    namespace,
    'create',
    'role',
    'user',
    '--verb=get,create',
    '--resource=pods,pods/log,pods/exec',
  ]);
  await clusters.kubectl('host', [
    '-n',
    namespace,
    'create',
    'rolebinding',
    'user',
    '--role=user',
    `--serviceaccount=${namespace}:user`,
  ]);
  await clusters.kubectl('host', [
    'create',
    'clusterrole',
    `sess-${suffix}`,
    '--verb=get,create',
    '--resource=nodes/proxy',
  ]);
  await clusters.kubectl('host', [
    'create',
    'clusterrolebinding',
    `sess-${suffix}`,
    `--clusterrole=sess-${suffix}`,
    `--serviceaccount=${namespace}:user`,
  ]);
  user = {
    token: (await clusters.kubectl('host', ['create', 'token', 'user', '-n', namespace])).stdout.trim(),
  };
  userKubeconfig = await tokenKubeconfig(clusters.host.kubeconfig, user.token as string);
  port = await freePort();
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    kubeletPort: port,
    kubelet: { maxSessionsPerPod: PER_POD, maxSessionsPerClient: PER_CLIENT },
    remotes: [test.remoteConfig],
  });
  await runPods(test, ['app', 'other'], 'sess');
});

afterAll(async () => {
  await removeKubeletTestNamespace(test, () => spillway?.stop());
  await clusters.kubectl('host', ['delete', 'clusterrole,clusterrolebinding', `sess-${suffix}`], {
    allowFailure: true,
  });
});

describe('many sessions through the API server', () => {
  const sessions: WebSocket[] = [];

  afterAll(() => {
    for (const ws of sessions) ws.terminate();
  });

  async function openSessions(count: number): Promise<void> {
    const opened = Array.from({ length: count }, () => {
      const ws = execThroughApiServer('app', ['sleep', '120']);
      sessions.push(ws);
      return new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('unexpected-response', (_request, response) =>
          reject(new Error(`HTTP ${response.statusCode}`)),
        );
      });
    });
    await Promise.all(opened);
  }

  it(`holds ${SESSIONS} sessions from one user and still serves exec and logs to everyone`, async () => {
    for (let i = 0; i < SESSIONS; i += 25) await openSessions(25);
    await waitFor('every session admitted', () =>
      (spillway.kubelet?.openSessions ?? 0) >= SESSIONS ? true : undefined,
    );
    expect(await refusals('client')).toBe(0);

    // Everyone else still gets exec and logs, through the same API server identity.
    expect((await kubectlAs(['exec', 'app', '--', 'echo', 'admin'])).stdout).toBe('admin\n');
    expect((await kubectlAs(['exec', 'app', '--', 'echo', 'user'], 'user')).stdout).toBe('user\n');
    expect((await kubectlAs(['logs', 'app'], 'user')).stdout).toBe('started\n');
    expect((await kubectlAs(['logs', 'other'])).stdout).toBe('started\n');
    // And the sessions are all still there.
    expect(sessions.every((ws) => ws.readyState === WebSocket.OPEN)).toBe(true);
    expect(spillway.kubelet?.openSessions).toBeGreaterThanOrEqual(SESSIONS);
  }, 300_000);

  it('refuses a pod over its limit with 429 and the reason, and serves the other pods', async () => {
    const before = await refusals('pod');
    await openSessions(PER_POD - SESSIONS);
    await waitFor('the pod at its limit', () =>
      (spillway.kubelet?.openSessions ?? 0) >= PER_POD ? true : undefined,
    );
    const refused = await refusalOf(execThroughApiServer('app', ['true']));
    expect(refused).toContain(`too many concurrent sessions for pod ${namespace}/app (at most ${PER_POD})`);
    // For logs the API server relays the 429 in its own words, without the kubelet's reason.
    const logs = await kubectlAs(['logs', 'app']);
    expect(logs.exitCode).not.toBe(0);
    expect(logs.stderr).toContain('Error from server (TooManyRequests)');
    expect((await kubectlAs(['exec', 'other', '--', 'echo', 'yes'], 'user')).stdout).toBe('yes\n');
    expect((await kubectlAs(['logs', 'other'], 'user')).stdout).toBe('started\n');
    expect(await refusals('pod')).toBe(before + 2);
  }, 300_000);

  it('limits a direct caller of the kubelet port as one user, whatever the API server holds', async () => {
    const before = await refusals('client');
    const exec = `/exec/${namespace}/other/main?command=sleep&command=120&output=1`;
    const direct = await Promise.all(
      Array.from({ length: PER_CLIENT }, () => kubeletWebSocket(port, exec, 'v5.channel.k8s.io', user)),
    );
    expect(direct.map((d) => d.status)).toEqual(Array(PER_CLIENT).fill(101));
    const over = await kubeletWebSocket(port, exec, 'v5.channel.k8s.io', user);
    expect(over.status).toBe(429);
    expect(over.body).toContain(`too many concurrent sessions for system:serviceaccount:${namespace}:user`);
    expect(await refusals('client')).toBe(before + 1);
    for (const { ws } of direct) ws?.terminate();
  });

  it('frees every session once the clients are gone', async () => {
    for (const ws of sessions) ws.terminate();
    await waitFor('sessions released', () => (spillway.kubelet?.openSessions === 0 ? true : undefined), {
      timeoutMs: 60_000,
    });
  });
});

describe('many kubectl logs -f through the API server', () => {
  const FOLLOWERS = 200;
  const followers: { child: ChildProcessWithoutNullStreams; output: string }[] = [];
  let restoreInotify: () => void = () => {};

  beforeAll(() => {
    // 200 followers and whatever else runs on the machine (the real node raises it to 1024 too).
    restoreInotify = raiseSysctl('fs.inotify.max_user_instances', 1024);
  });

  afterAll(async () => {
    for (const follower of followers) follower.child.kill('SIGKILL');
    await waitFor('the followers gone', () =>
      followers.every(({ child }) => child.exitCode !== null || child.signalCode !== null) ? true : undefined,
    ).catch(() => {});
    restoreInotify();
  });

  async function follow(): Promise<void> {
    const child = spawn(
      clusters.kubectlBinary,
      [`--kubeconfig=${clusters.host.kubeconfig}`, '-n', namespace, 'logs', '-f', 'app'],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const follower = { child, output: '' };
    followers.push(follower);
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (follower.output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    await waitFor(
      'a follower’s first line',
      () => {
        if (child.exitCode !== null) throw new Error(`kubectl logs -f exited ${child.exitCode}: ${stderr}`);
        return follower.output.includes('started\n') ? true : undefined;
      },
      { timeoutMs: 120_000 },
    );
  }

  it(`follows with ${FOLLOWERS} kubectl processes at once and still serves exec and logs to everyone`, async () => {
    const refusedBefore = await refusals('client');
    for (let i = 0; i < FOLLOWERS; i += 25) await Promise.all(Array.from({ length: 25 }, follow));
    await waitFor('every follower admitted', () =>
      (spillway.kubelet?.openSessions ?? 0) >= FOLLOWERS ? true : undefined,
    );
    expect(await refusals('client')).toBe(refusedBefore);
    // The host API server carries them over HTTP/2: a few connections to Spillway, not one each.
    expect(spillway.kubelet?.openConnections).toBeLessThan(FOLLOWERS / 10);

    expect((await kubectlAs(['exec', 'app', '--', 'echo', 'admin'])).stdout).toBe('admin\n');
    expect((await kubectlAs(['exec', 'other', '--', 'echo', 'user'], 'user')).stdout).toBe('user\n');
    expect((await kubectlAs(['logs', 'app'], 'user')).stdout).toBe('started\n');
    expect((await kubectlAs(['logs', 'other'])).stdout).toBe('started\n');

    // Every follower is live: a line written now reaches all of them.
    await appendFile(kwok.logFile, criLine(new Date(), 'stdout', 'written while 200 follow'));
    await waitFor(
      'the new line at every follower',
      () => (followers.every((f) => f.output.endsWith('written while 200 follow\n')) ? true : undefined),
      { timeoutMs: 120_000 },
    );
    expect(followers.every((f) => f.child.exitCode === null)).toBe(true);
  }, 600_000);

  it('frees the sessions once kubectl stops', async () => {
    for (const follower of followers) follower.child.kill('SIGINT');
    await waitFor('sessions released', () => (spillway.kubelet?.openSessions === 0 ? true : undefined), {
      timeoutMs: 120_000,
    });
    // And logs still work afterwards.
    expect((await kubectlAs(['logs', 'app'], 'user')).stdout).toBe('started\nwritten while 200 follow\n');
  });
});
