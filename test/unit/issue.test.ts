import { createPrivateKey, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { issueSelfSigned, keyAndRequest } from '../../src/tls/issue.ts';

describe('certificate work in a worker thread', () => {
  it('issues a self-signed serving certificate for the names asked, with its key', async () => {
    const { key, certificate } = await issueSelfSigned(
      'system:node:spillway-a',
      ['127.0.0.1', 'spillway-a'],
      30,
    );
    const x509 = new X509Certificate(certificate);
    expect(x509.subject).toContain('CN=system:node:spillway-a');
    expect(x509.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(x509.subjectAltName).toContain('DNS:spillway-a');
    expect(x509.checkPrivateKey(createPrivateKey(key))).toBe(true);
    const days = (Date.parse(x509.validTo) - Date.parse(x509.validFrom)) / 86_400_000;
    expect(Math.round(days)).toBeGreaterThanOrEqual(30);
    expect(Math.round(days)).toBeLessThanOrEqual(31);
  });

  it('makes a key and a PKCS#10 request for it', async () => {
    const { key, request } = await keyAndRequest('system:node:spillway-b', ['system:nodes'], ['spillway-b']);
    expect(request).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);
    expect(createPrivateKey(key).asymmetricKeyType).toBe('ec');
  });

  it('answers with an error, not a hang, when the work fails', async () => {
    await expect(issueSelfSigned('system:node:x', ['x'], Number.NaN)).rejects.toThrow(
      /certificate work failed: a certificate must be valid for a positive number of days, not NaN/,
    );
  });
});
