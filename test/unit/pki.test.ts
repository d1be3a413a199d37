import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { renewalTime } from '../../src/kubelet/tls.ts';
import { CertificateAuthority, selfSignedServingCertificate } from '../../src/tls/pki.ts';

describe('the certificate authority', () => {
  it('issues a serving certificate that chains to it, with IP and DNS names', async () => {
    const ca = await CertificateAuthority.create('test-ca');
    const issued = await ca.issue({
      commonName: 'kube-apiserver',
      usages: ['server'],
      subjectAltNames: ['127.0.0.1', 'localhost'],
    });
    const cert = new X509Certificate(issued.certificatePem);
    const caCert = new X509Certificate(ca.certificatePem);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.subject).toBe('CN=kube-apiserver');
    expect(caCert.ca).toBe(true);
    expect(cert.ca).toBe(false);
  });

  it('puts organizations in the subject, which Kubernetes reads as groups', async () => {
    const ca = await CertificateAuthority.create('test-ca');
    const issued = await ca.issue({ commonName: 'admin', organizations: ['system:masters'] });
    expect(new X509Certificate(issued.certificatePem).subject.split('\n')).toEqual([
      'CN=admin',
      'O=system:masters',
    ]);
  });

  it('reloads from PEM and keeps issuing certificates that verify', async () => {
    const original = await CertificateAuthority.create('test-ca');
    const reloaded = await CertificateAuthority.load(original.certificatePem, original.issued.privateKeyPem);
    const issued = await reloaded.issue({ commonName: 'client' });
    expect(
      new X509Certificate(issued.certificatePem).verify(
        new X509Certificate(original.certificatePem).publicKey,
      ),
    ).toBe(true);
  });

  it('makes self-signed serving certificates valid for the requested period', async () => {
    const before = Date.now();
    const issued = await selfSignedServingCertificate('spillway', ['127.0.0.1'], 30);
    const cert = new X509Certificate(issued.certificatePem);
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    const validTo = new Date(cert.validTo).getTime();
    expect(validTo - before).toBeGreaterThan(29 * 24 * 3600 * 1000);
    expect(validTo - before).toBeLessThan(31 * 24 * 3600 * 1000);
  });
});

describe('serving certificate renewal', () => {
  it('renews once the given share of the lifetime has passed, however long the lifetime', () => {
    const notBefore = new Date('2026-01-01T00:00:00Z');
    const tenMinutes = { notBefore, notAfter: new Date(notBefore.getTime() + 600_000) };
    expect(renewalTime(tenMinutes, 0.8)).toBe(notBefore.getTime() + 480_000);
    // A year-long certificate renews after ~292 days, far beyond what one timer can wait.
    const year = { notBefore, notAfter: new Date(notBefore.getTime() + 365 * 86_400_000) };
    expect(renewalTime(year, 0.8) - notBefore.getTime()).toBe(292 * 86_400_000);
  });
});
