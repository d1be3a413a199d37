// Small certificate authority helpers on top of @peculiar/x509: ECDSA P-256 keys, PEM output.
// Used by the kubelet server for its serving certificate and by the test clusters for their PKI.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

type CryptoProvider = Parameters<typeof x509.cryptoProvider.set>[0];
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as CryptoProvider);

const keyAlgorithm = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const signingAlgorithm = { name: 'ECDSA', hash: 'SHA-256' } as const;
const dayMs = 24 * 60 * 60 * 1000;

export interface KeyPair {
  readonly keys: CryptoKeyPair;
  readonly privateKeyPem: string;
  readonly publicKeyPem: string;
}

export interface IssuedCertificate extends KeyPair {
  readonly certificate: x509.X509Certificate;
  readonly certificatePem: string;
}

export type CertificateUsage = 'server' | 'client';

export interface CertificateRequest {
  /** Common name, e.g. `kube-apiserver` or `system:node:spillway-remote`. */
  readonly commonName: string;
  /** Organizations, which Kubernetes reads as groups. */
  readonly organizations?: readonly string[];
  /** DNS names and IP addresses; IPs are recognised and encoded as such. */
  readonly subjectAltNames?: readonly string[];
  readonly usages?: readonly CertificateUsage[];
  readonly validForDays?: number;
  /** Backdating tolerates small clock differences between the issuer and the verifier. */
  readonly notBefore?: Date;
}

export async function generateKeyPair(): Promise<KeyPair> {
  const keys = (await webcrypto.subtle.generateKey(keyAlgorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
  return { keys, ...(await exportKeyPair(keys)) };
}

async function exportKeyPair(keys: CryptoKeyPair): Promise<{ privateKeyPem: string; publicKeyPem: string }> {
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as webcrypto.CryptoKey);
  const spki = await webcrypto.subtle.exportKey('spki', keys.publicKey as webcrypto.CryptoKey);
  return {
    privateKeyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'),
    publicKeyPem: x509.PemConverter.encode(spki, 'PUBLIC KEY'),
  };
}

/** Imports a PKCS#8 PEM private key (as written by {@link generateKeyPair}) with its public half. */
export async function importKeyPair(privateKeyPem: string, certificatePem: string): Promise<KeyPair> {
  const privateKey = await webcrypto.subtle.importKey(
    'pkcs8',
    x509.PemConverter.decodeFirst(privateKeyPem),
    keyAlgorithm,
    true,
    ['sign'],
  );
  const publicKey = await new x509.X509Certificate(certificatePem).publicKey.export(
    keyAlgorithm,
    ['verify'],
    webcrypto as unknown as CryptoProvider,
  );
  const keys = { privateKey, publicKey } as CryptoKeyPair;
  return { keys, ...(await exportKeyPair(keys)) };
}

function nameOf(commonName: string, organizations: readonly string[] = []): string {
  const escapeRdn = (value: string) => value.replace(/([,+="\\<>;#])/g, '\\$1');
  return [`CN=${escapeRdn(commonName)}`, ...organizations.map((o) => `O=${escapeRdn(o)}`)].join(', ');
}

function subjectAltNames(names: readonly string[]): x509.SubjectAlternativeNameExtension {
  return new x509.SubjectAlternativeNameExtension(
    names.map((value) => ({ type: isIP(value) ? 'ip' : 'dns', value })),
  );
}

function extendedKeyUsages(usages: readonly CertificateUsage[]): x509.ExtendedKeyUsageExtension {
  return new x509.ExtendedKeyUsageExtension(
    usages.map((usage) =>
      usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
    ),
  );
}

function validity(request: { validForDays?: number; notBefore?: Date }): { notBefore: Date; notAfter: Date } {
  const days = request.validForDays ?? 365;
  // An invalid date would be encoded as is and make a certificate nobody accepts.
  if (!(days > 0)) throw new Error(`a certificate must be valid for a positive number of days, not ${days}`);
  const notBefore = request.notBefore ?? new Date(Date.now() - 60 * 60 * 1000);
  return { notBefore, notAfter: new Date(notBefore.getTime() + days * dayMs) };
}

export class CertificateAuthority {
  readonly issued: IssuedCertificate;

  private constructor(issued: IssuedCertificate) {
    this.issued = issued;
  }

  get certificatePem(): string {
    return this.issued.certificatePem;
  }

  static async create(commonName: string, validForDays = 3650): Promise<CertificateAuthority> {
    const keyPair = await generateKeyPair();
    const certificate = await x509.X509CertificateGenerator.createSelfSigned({
      name: nameOf(commonName),
      keys: keyPair.keys,
      signingAlgorithm,
      ...validity({ validForDays }),
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keyPair.keys.publicKey),
      ],
    });
    return new CertificateAuthority({ ...keyPair, certificate, certificatePem: certificate.toString('pem') });
  }

  static async load(certificatePem: string, privateKeyPem: string): Promise<CertificateAuthority> {
    const keyPair = await importKeyPair(privateKeyPem, certificatePem);
    const certificate = new x509.X509Certificate(certificatePem);
    return new CertificateAuthority({ ...keyPair, certificate, certificatePem });
  }

  async issue(request: CertificateRequest): Promise<IssuedCertificate> {
    const keyPair = await generateKeyPair();
    const certificate = await x509.X509CertificateGenerator.create({
      subject: nameOf(request.commonName, request.organizations),
      issuer: this.issued.certificate.subject,
      publicKey: keyPair.keys.publicKey,
      signingKey: this.issued.keys.privateKey,
      signingAlgorithm,
      ...validity(request),
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
          true,
        ),
        extendedKeyUsages(request.usages ?? ['client']),
        ...(request.subjectAltNames?.length ? [subjectAltNames(request.subjectAltNames)] : []),
        await x509.AuthorityKeyIdentifierExtension.create(this.issued.keys.publicKey),
      ],
    });
    return { ...keyPair, certificate, certificatePem: certificate.toString('pem') };
  }
}

/** A self-signed serving certificate: what a kubelet uses when nobody issues it one. */
export async function selfSignedServingCertificate(
  commonName: string,
  subjectAltNamesList: readonly string[],
  validForDays = 365,
): Promise<IssuedCertificate> {
  const keyPair = await generateKeyPair();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    name: nameOf(commonName),
    keys: keyPair.keys,
    signingAlgorithm,
    ...validity({ validForDays }),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      extendedKeyUsages(['server']),
      subjectAltNames(subjectAltNamesList),
    ],
  });
  return { ...keyPair, certificate, certificatePem: certificate.toString('pem') };
}

/** A PKCS#10 request, PEM encoded, for the CertificateSigningRequest API. */
export async function certificateSigningRequest(
  keyPair: KeyPair,
  commonName: string,
  organizations: readonly string[],
  subjectAltNamesList: readonly string[],
): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: nameOf(commonName, organizations),
    keys: keyPair.keys,
    signingAlgorithm,
    extensions: [subjectAltNames(subjectAltNamesList)],
  });
  return csr.toString('pem');
}
