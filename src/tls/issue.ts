// Keys, self-signed certificates and certificate requests, made in a short-lived worker thread.
// @peculiar/x509 with reflect-metadata and its ASN.1 schemas takes about 14 MiB resident once loaded,
// and a module once loaded stays for the life of the process; the serving certificate is made once a
// year (self-signed) or at each renewal (CSR), so the process need not carry it in between.
import { Worker } from 'node:worker_threads';

export type PkiJob =
  | {
      readonly kind: 'self-signed';
      readonly commonName: string;
      readonly subjectAltNames: readonly string[];
      readonly validForDays: number;
    }
  | {
      readonly kind: 'request';
      readonly commonName: string;
      readonly organizations: readonly string[];
      readonly subjectAltNames: readonly string[];
    };

/** PEM private key, with the certificate (self-signed) or the PEM PKCS#10 request (request). */
export type PkiResult = { readonly key: string; readonly certificate?: string; readonly request?: string };

// Run from source (tests, `npm run spillway`) the worker is the .ts file, from dist/ the .js one.
const workerUrl = new URL(`./pki-worker.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url);

function runJob(job: PkiJob): Promise<PkiResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerUrl, { workerData: job });
    let settled = false;
    worker.once('message', (message: { result?: PkiResult; error?: string }) => {
      settled = true;
      if (message.result) resolve(message.result);
      else reject(new Error(`certificate work failed: ${message.error}`));
    });
    worker.once('error', (error) => {
      settled = true;
      reject(new Error(`certificate worker failed: ${error.message}`, { cause: error }));
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`certificate worker exited with code ${code} before answering`));
    });
  });
}

/** A self-signed serving certificate and its key, PEM. */
export async function issueSelfSigned(
  commonName: string,
  subjectAltNames: readonly string[],
  validForDays: number,
): Promise<{ key: string; certificate: string }> {
  const { key, certificate } = await runJob({
    kind: 'self-signed',
    commonName,
    subjectAltNames,
    validForDays,
  });
  if (!certificate) throw new Error('certificate worker returned no certificate');
  return { key, certificate };
}

/** A new key and a PKCS#10 request for it (PEM), for the CertificateSigningRequest API. */
export async function keyAndRequest(
  commonName: string,
  organizations: readonly string[],
  subjectAltNames: readonly string[],
): Promise<{ key: string; request: string }> {
  const { key, request } = await runJob({ kind: 'request', commonName, organizations, subjectAltNames });
  if (!request) throw new Error('certificate worker returned no request');
  return { key, request };
}
