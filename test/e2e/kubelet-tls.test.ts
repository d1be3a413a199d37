// A host cluster that verifies kubelet serving certificates (--kubelet-certificate-authority): with
// kubelet.tls.mode csr, Spillway's certificate comes from the host's kubernetes.io/kubelet-serving
// signer, so `kubectl logs` works; a rotation is picked up by new connections without a restart. A
// self-signed certificate is refused by the same host, which shows the verification is real.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import { kube, uniqueSuffix } from '../support/kube.ts';
import { criLine, kwokForNamespace, removeKwokForNamespace } from '../support/kwok.ts';
import { startSpillway } from '../support/spillway.ts';
import { delegatesCollected, pinnedSpec, waitForRunning } from '../support/workloads.ts';

const suffix = uniqueSuffix();
const remoteName = `tls-${suffix}`;
const nodeName = `spillway-tls-${suffix}`;
const namespace = `tls-${suffix}`;
const remote = kube(clusters.remote.kubeconfig);
let hostInfo: Awaited<ReturnType<typeof clusters.ensure>>;
let host: ReturnType<typeof kube>;
let spillway: Spillway | undefined;

const kubectl = (args: string[]) => clusters.kubectl('host-verify', ['-n', namespace, ...args]);

/** The certificate Spillway's kubelet port presents to a new connection. */
function presentedCertificate(port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const raw = socket.getPeerCertificate().raw;
      socket.end();
      resolve(new X509Certificate(raw));
    });
    socket.once('error', reject);
  });
}

async function startWith(tls: Record<string, unknown>): Promise<Spillway> {
  return startSpillway({
    hostKubeconfig: hostInfo.kubeconfig,
    remotes: [{ name: remoteName, kubeconfig: clusters.remote.kubeconfig, nodeName }],
    kubelet: { tls },
  });
}

beforeAll(async () => {
  hostInfo = await clusters.ensure('host-verify', 'host', { verifyKubeletCertificates: true });
  host = kube(hostInfo.kubeconfig);
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  await remote.core.createNamespace({ body: { metadata: { name: namespace } } });
  await kwokForNamespace(remote, namespace, { logs: criLine(new Date(), 'stdout', 'verified') });
  spillway = await startWith({ mode: 'csr', approveCsr: true, csrExpirationSeconds: 600 });
  await host.core.createNamespacedPod({
    namespace,
    body: { metadata: { name: 'app', labels: { app: 'tls' } }, spec: pinnedSpec(remoteName) },
  });
  await waitForRunning(host, namespace, 'app=tls', 1);
});

afterAll(async () => {
  await host?.core.deleteNamespace({ name: namespace }).catch(() => {});
  await delegatesCollected(remote, namespace);
  await spillway?.stop();
  await removeKwokForNamespace(remote, namespace);
  await host?.core.deleteNode({ name: nodeName }).catch(() => {});
  await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
});

describe('serving certificate from the host signer', () => {
  it('is issued by the host cluster CA for the advertised address and the node name', async () => {
    const kubelet = spillway?.kubelet;
    if (!kubelet) throw new Error('Spillway not started');
    const presented = await presentedCertificate(kubelet.port);
    if (!hostInfo.caCert) throw new Error('the host-verify cluster has no CA file');
    const ca = new X509Certificate(await readFile(hostInfo.caCert));
    expect(presented.verify(ca.publicKey)).toBe(true);
    expect(presented.subject).toContain(`CN=system:node:${nodeName}`);
    expect(presented.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(presented.subjectAltName).toContain(`DNS:${nodeName}`);
    // The signer honours the requested lifetime (600 s, the smallest the API accepts).
    const lifetime = new Date(presented.validTo).getTime() - new Date(presented.validFrom).getTime();
    expect(lifetime).toBeLessThanOrEqual(600_000 + 300_000);
    const csrs = await host.certificates.listCertificateSigningRequest();
    const ours = csrs.items.filter((csr) => csr.spec.signerName === 'kubernetes.io/kubelet-serving');
    expect(ours.some((csr) => csr.status?.conditions?.some((c) => c.type === 'Approved'))).toBe(true);
  });

  it('lets a verifying API server reach the pod: kubectl logs', async () => {
    expect((await kubectl(['logs', 'app'])).stdout).toBe('verified\n');
  });

  it('serves a rotated certificate to new connections, and kubectl keeps working', async () => {
    const kubelet = spillway?.kubelet;
    if (!kubelet) throw new Error('Spillway not started');
    const before = await presentedCertificate(kubelet.port);
    await kubelet.certificate.rotate();
    const after = await presentedCertificate(kubelet.port);
    expect(after.serialNumber).not.toBe(before.serialNumber);
    expect(kubelet.certificate.renewals).toBe(1);
    expect((await kubectl(['logs', 'app'])).stdout).toBe('verified\n');
  });
});

describe('a self-signed certificate', () => {
  it('is refused by a host that verifies kubelets', async () => {
    await spillway?.stop();
    spillway = await startWith({ mode: 'self-signed' });
    const result = await clusters.kubectl('host-verify', ['-n', namespace, 'logs', 'app'], {
      allowFailure: true,
    });
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(/x509|certificate/i);
  });
});
