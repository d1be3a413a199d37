// Who may use Spillway's kubelet port, and what hostile or broken clients get: 401 and 403 as a kubelet
// answers them, errors rather than crashes, and no session or socket left behind.
import { randomBytes } from 'node:crypto';
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { CertificateAuthority } from '../../src/tls/pki.ts';
import { clusters } from '../cluster/fixture.ts';
import { freePort } from '../cluster/ports.ts';
import { type Credentials, kubeconfigCredentials, kubeletGet } from '../support/kubelet-client.ts';
import {
  createKubeletTestNamespace,
  kubeletTestNames,
  removeKubeletTestNamespace,
  runPods,
} from '../support/kubelet-fixture.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';

const test = kubeletTestNames('sec');
const { namespace, nodeName, suffix, host } = test;
const maxSessions = 3;
let spillway: Spillway;
let port: number;

const call = (path: string, credentials: Credentials = {}, extraHeaders: Record<string, string> = {}) =>
  kubeletGet(port, path, credentials, extraHeaders);

/** Opens a TLS connection and sends an upgrade request for an exec session; resolves with the socket and the answer's first bytes. */
function openExec(credentials: Credentials, command: string): Promise<{ socket: TLSSocket; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port,
      rejectUnauthorized: false,
      cert: credentials.cert,
      key: credentials.key,
    });
    socket.once('secureConnect', () => {
      socket.write(
        `POST /exec/${namespace}/app/main?${command}&output=1 HTTP/1.1\r\nHost: kubelet\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n` +
          (credentials.token ? `Authorization: Bearer ${credentials.token}\r\n` : '') +
          'X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n',
      );
    });
    socket.once('data', (chunk: Buffer) => resolve({ socket, head: chunk.toString('latin1') }));
    socket.on('error', reject);
  });
}

let admin: Credentials;
let noRights: Credentials;
let proxyOnly: Credentials;

async function serviceAccountToken(name: string): Promise<string> {
  await host.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  return (await clusters.kubectl('host', ['create', 'token', name, '-n', namespace])).stdout.trim();
}

beforeAll(async () => {
  admin = await kubeconfigCredentials(clusters.host.kubeconfig);
  await createKubeletTestNamespace(test, { logs: '' });
  noRights = { token: await serviceAccountToken('nobody') };
  proxyOnly = { token: await serviceAccountToken('log-reader') };
  await clusters.kubectl('host', [
    'create',
    'clusterrole',
    `proxy-${suffix}`,
    '--verb=get,create',
    '--resource=nodes/proxy',
    `--resource-name=${nodeName}`,
  ]);
  await clusters.kubectl('host', [
    'create',
    'clusterrolebinding',
    `proxy-${suffix}`,
    `--clusterrole=proxy-${suffix}`,
    `--serviceaccount=${namespace}:log-reader`,
  ]);
  port = await freePort();
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    kubeletPort: port,
    kubelet: { maxSessionsPerClient: maxSessions },
    remotes: [test.remoteConfig],
  });
  await runPods(test, ['app'], 'sec');
});

afterAll(async () => {
  await removeKubeletTestNamespace(test, () => spillway?.stop());
  await clusters.kubectl('host', ['delete', 'clusterrole,clusterrolebinding', `proxy-${suffix}`], {
    allowFailure: true,
  });
});

describe('authentication and authorization', () => {
  const logs = () => `/containerLogs/${namespace}/app/main`;

  it('refuses anonymous callers with 401', async () => {
    expect((await call(logs())).status).toBe(401);
    expect((await call('/pods')).status).toBe(401);
    expect((await call('/metrics/resource')).status).toBe(401);
    expect((await openExec({}, 'command=true')).head).toMatch(/^HTTP\/1\.1 401/);
  });

  it('refuses a client certificate from another CA with 401, and a bad token with 401', async () => {
    const stranger = await CertificateAuthority.create('stranger');
    const issued = await stranger.issue({
      commonName: 'kubernetes-admin',
      organizations: ['system:masters'],
    });
    expect((await call(logs(), { cert: issued.certificatePem, key: issued.privateKeyPem })).status).toBe(401);
    expect((await call(logs(), { token: 'not-a-token' })).status).toBe(401);
  });

  it('refuses an authenticated caller without the node permission with 403', async () => {
    const refused = await call(logs(), noRights);
    expect(refused.status).toBe(403);
    expect(refused.body).toContain(`user=system:serviceaccount:${namespace}:nobody`);
    expect(refused.body).toContain('subresource(s)=[proxy]');
    expect((await openExec(noRights, 'command=true')).head).toMatch(/^HTTP\/1\.1 403/);
  });

  it('lets through exactly what RBAC grants on this node', async () => {
    expect((await call(logs(), proxyOnly)).status).toBe(200);
    // nodes/proxy does not grant nodes/stats or nodes/metrics.
    expect((await call('/stats/summary', proxyOnly)).status).toBe(403);
    expect((await call(logs(), admin)).status).toBe(200);
    expect((await call('/healthz', admin)).body).toBe('ok');
  });
});

describe('hostile and broken clients', () => {
  it('answers garbage after a SPDY upgrade by closing that connection, and keeps serving', async () => {
    const { socket, head } = await openExec(admin, 'command=sleep&command=5');
    expect(head).toMatch(/^HTTP\/1\.1 101/);
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(randomBytes(4096));
    await closed;
    expect((await call('/healthz', admin)).status).toBe(200);
  });

  it('refuses huge headers and malformed requests with 4xx', async () => {
    // Node refuses the headers with 431, or resets the connection while the client is still sending them.
    const huge = await call('/healthz', admin, { 'x-padding': 'a'.repeat(64 * 1024) }).catch(
      (error: NodeJS.ErrnoException) => ({
        status: error.code === 'ECONNRESET' ? 431 : 0,
        body: '',
      }),
    );
    expect(huge.status).toBe(431);
    const raw = await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () =>
        socket.write('NOT HTTP AT ALL\r\n\r\n'),
      );
      let text = '';
      socket.on('data', (chunk) => (text += chunk));
      socket.on('close', () => resolve(text));
      socket.on('error', () => resolve(text));
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400/);
    expect((await call('/healthz', admin)).status).toBe(200);
  });

  it('leaves no connection open once clients are gone', async () => {
    await waitFor('connections closed', () => (spillway.kubelet?.openConnections === 0 ? true : undefined), {
      timeoutMs: 15_000,
    });
  });

  it('limits sessions per client, and frees them when clients vanish', async () => {
    const open = await Promise.all(
      Array.from({ length: maxSessions }, () => openExec(admin, 'command=sleep&command=30')),
    );
    for (const { head } of open) expect(head).toMatch(/^HTTP\/1\.1 101/);
    const over = await openExec(admin, 'command=true');
    expect(over.head).toMatch(/^HTTP\/1\.1 429/);
    // Abrupt disconnects: no FIN, no GOAWAY.
    for (const { socket } of open) socket.destroy();
    const admitted = await waitFor('a session is admitted again', async () => {
      const { socket, head } = await openExec(admin, 'command=true');
      socket.destroy();
      return head.startsWith('HTTP/1.1 101') ? head : undefined;
    });
    expect(admitted).toMatch(/^HTTP\/1\.1 101/);
  });
});
