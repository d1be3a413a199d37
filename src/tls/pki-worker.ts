// One certificate job, run in a worker thread (see issue.ts): @peculiar/x509 and what it pulls in
// stay loaded here, and go when the worker exits.
import { parentPort, workerData } from 'node:worker_threads';
import type { PkiJob, PkiResult } from './issue.ts';
import { certificateSigningRequest, generateKeyPair, selfSignedServingCertificate } from './pki.ts';

async function run(job: PkiJob): Promise<PkiResult> {
  if (job.kind === 'self-signed') {
    const issued = await selfSignedServingCertificate(job.commonName, job.subjectAltNames, job.validForDays);
    return { key: issued.privateKeyPem, certificate: issued.certificatePem };
  }
  const keyPair = await generateKeyPair();
  const request = await certificateSigningRequest(
    keyPair,
    job.commonName,
    job.organizations,
    job.subjectAltNames,
  );
  return { key: keyPair.privateKeyPem, request };
}

run(workerData as PkiJob).then(
  (result) => parentPort?.postMessage({ result }),
  (error: unknown) =>
    parentPort?.postMessage({ error: error instanceof Error ? error.message : String(error) }),
);
