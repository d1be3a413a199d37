// The kubelet API's TLS material: the serving certificate (self-signed with the right SANs, or issued by
// the host cluster through a CertificateSigningRequest for the kubernetes.io/kubelet-serving signer,
// or files) renewed before it expires, and the host's client CA (to verify the API server's client
// certificate), read from kube-system/extension-apiserver-authentication and refreshed.

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { messageOf } from '../kube/errors.ts';
import { issueSelfSigned, keyAndRequest } from '../tls/issue.ts';

export type ServingMode = 'self-signed' | 'csr' | 'files';

export interface ServingCertificateOptions {
  readonly mode: ServingMode;
  readonly address: string;
  /** Names of the virtual nodes served (DNS SANs; the CSR's common name uses the first). */
  readonly nodeNames: () => readonly string[];
  readonly host: ClusterClient;
  readonly logger: Logger;
  readonly certFile?: string;
  readonly keyFile?: string;
  /** Approve our own CSR (needs certificatesigningrequests/approval); otherwise wait for an approver. */
  readonly approve?: boolean;
  /** Requested lifetime of issued certificates (the signer may shorten it). */
  readonly csrExpirationSeconds?: number;
  /** Renew when this share of the lifetime has passed. */
  readonly renewAt?: number;
}

export interface KeyAndCertificate {
  readonly key: string;
  readonly cert: string;
  readonly notAfter: Date;
  readonly notBefore: Date;
}

const CSR_API = '/apis/certificates.k8s.io/v1/certificatesigningrequests';

export class ServingCertificate {
  private readonly options: ServingCertificateOptions;
  private material: KeyAndCertificate | undefined;
  private readonly listeners: ((material: KeyAndCertificate) => void)[] = [];
  /** Renewals so far (tests read it). */
  renewals = 0;

  constructor(options: ServingCertificateOptions) {
    if (options.mode === 'files' && !(options.certFile && options.keyFile)) {
      throw new Error('kubelet.tls: mode "files" needs certFile and keyFile');
    }
    this.options = options;
  }

  get current(): KeyAndCertificate {
    if (!this.material) throw new Error('serving certificate not loaded yet');
    return this.material;
  }

  onChange(listener: (material: KeyAndCertificate) => void): void {
    this.listeners.push(listener);
  }

  /** Obtains the first certificate; then keeps renewing it in the background until the signal aborts. */
  async start(signal: AbortSignal): Promise<void> {
    this.material = await this.obtain();
    void this.renewLoop(signal);
  }

  /** Obtains a new certificate now and hands it to the server; connections already open keep theirs. */
  async rotate(): Promise<KeyAndCertificate> {
    const material = await this.obtain();
    this.material = material;
    this.renewals++;
    this.options.logger.info({ notAfter: material.notAfter }, 'kubelet serving certificate renewed');
    for (const listener of this.listeners) listener(material);
    return material;
  }

  private async renewLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      // The signal passes the loop's own renewal time too, so a rotate() in between pushes it back.
      const renewAt = renewalTime(this.current, this.options.renewAt ?? 0.8);
      try {
        // Timers hold at most 2^31-1 ms (~24 days); a longer wait is taken in steps, re-reading the
        // current certificate after each, in case someone rotated it meanwhile.
        if (Date.now() < renewAt) {
          await sleep(Math.min(renewAt - Date.now(), 60 * 60_000), undefined, { signal });
          continue;
        }
      } catch {
        return;
      }
      try {
        await this.rotate();
        // A certificate that is already due (files nobody replaced yet, a signer issuing very short
        // lives) is tried again in a minute, not in a tight loop.
        if (renewalTime(this.current, this.options.renewAt ?? 0.8) <= Date.now()) {
          await sleep(60_000, undefined, { signal });
        }
      } catch (error) {
        if (signal.aborted) return;
        this.options.logger.error(
          { err: messageOf(error) },
          'renewing the kubelet serving certificate failed; retrying',
        );
        await sleep(30_000, undefined, { signal }).catch(() => {});
      }
    }
  }

  private async obtain(): Promise<KeyAndCertificate> {
    const { mode } = this.options;
    if (mode === 'files') {
      const cert = readFileSync(this.options.certFile as string, 'utf8');
      return describe(readFileSync(this.options.keyFile as string, 'utf8'), cert);
    }
    const sans = [...new Set([this.options.address, 'localhost', ...this.options.nodeNames()])];
    if (mode === 'self-signed') {
      const issued = await issueSelfSigned(this.commonName(), sans, 365);
      return describe(issued.key, issued.certificate);
    }
    return this.requestFromHost(sans);
  }

  private commonName(): string {
    return `system:node:${this.options.nodeNames()[0] ?? 'spillway'}`;
  }

  /** A kubelet-serving certificate from the host cluster's signer, as a kubelet with serverTLSBootstrap gets one. */
  private async requestFromHost(sans: string[]): Promise<KeyAndCertificate> {
    const { host, logger } = this.options;
    const { key, request } = await keyAndRequest(this.commonName(), ['system:nodes'], sans);
    const created = await host.create<{ metadata: { name: string } }>(CSR_API, {
      apiVersion: 'certificates.k8s.io/v1',
      kind: 'CertificateSigningRequest',
      metadata: { generateName: 'spillway-serving-' },
      spec: {
        request: Buffer.from(request).toString('base64'),
        signerName: 'kubernetes.io/kubelet-serving',
        usages: ['digital signature', 'server auth'],
        ...(this.options.csrExpirationSeconds
          ? { expirationSeconds: this.options.csrExpirationSeconds }
          : {}),
      },
    });
    const name = created.metadata.name;
    logger.info({ csr: name }, 'requested a kubelet serving certificate');
    if (this.options.approve) {
      const current = await host.get<Record<string, unknown>>(`${CSR_API}/${name}`);
      await host.replace(`${CSR_API}/${name}/approval`, {
        ...current,
        status: {
          conditions: [
            {
              type: 'Approved',
              status: 'True',
              reason: 'SpillwayServingCertificate',
              message: 'Spillway approved the serving certificate of its kubelet API',
            },
          ],
        },
      });
    }
    const deadline = Date.now() + 120_000;
    for (;;) {
      const csr = await host.get<{
        status?: { certificate?: string; conditions?: { type: string; message?: string }[] };
      }>(`${CSR_API}/${name}`);
      const refused = csr.status?.conditions?.find((c) => c.type === 'Denied' || c.type === 'Failed');
      if (refused)
        throw new Error(
          `CertificateSigningRequest ${name} ${refused.type.toLowerCase()}: ${refused.message ?? ''}`,
        );
      if (csr.status?.certificate) {
        return describe(key, Buffer.from(csr.status.certificate, 'base64').toString('utf8'));
      }
      if (Date.now() > deadline) {
        throw new Error(
          `CertificateSigningRequest ${name} was not issued within 2 minutes` +
            (this.options.approve ? '' : `; approve it with: kubectl certificate approve ${name}`),
        );
      }
      await sleep(500);
    }
  }
}

/** When to renew: once `share` of the certificate's lifetime has passed (as the kubelet renews at 70-90%). */
export function renewalTime(
  material: Pick<KeyAndCertificate, 'notBefore' | 'notAfter'>,
  share: number,
): number {
  const { notBefore, notAfter } = material;
  return notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) * share;
}

function describe(key: string, cert: string): KeyAndCertificate {
  const parsed = new X509Certificate(cert);
  return { key, cert, notBefore: new Date(parsed.validFrom), notAfter: new Date(parsed.validTo) };
}

/**
 * The CA bundle that signs client certificates the host API server presents (its
 * --kubelet-client-certificate), as published for extension API servers.
 */
export async function hostClientCA(host: ClusterClient): Promise<string> {
  const configMap = await host.get<{ data?: Record<string, string> }>(
    '/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication',
  );
  const bundle = configMap.data?.['client-ca-file'];
  if (!bundle) throw new Error('kube-system/extension-apiserver-authentication has no client-ca-file');
  return bundle;
}
