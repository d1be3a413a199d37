// The mutating admission webhook for burst pods: an HTTPS endpoint the host API server calls for pod
// creations that opted in (see install.ts for the selectors). It never blocks a pod: anything it cannot
// handle is allowed unchanged, and the configuration says failurePolicy: Ignore for when it is down.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { messageOf } from '../kube/errors.ts';
import { listen } from '../listen.ts';
import { CertificateAuthority } from '../tls/pki.ts';
import { type BurstOptions, burstPatch } from './mutation.ts';

export const MUTATE_PATH = '/mutate-pods';
const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface WebhookServerOptions {
  readonly bindAddress: string;
  readonly port: number;
  /** Names and addresses the API server uses to reach it (certificate SANs). */
  readonly subjectAltNames: readonly string[];
  /** Read per request: the virtual nodes' taints and weights change with the remotes. */
  readonly burstOptions: () => BurstOptions;
  /** The CA that signs the serving certificate (shared by replicas); default: a new one. */
  readonly authority?: CertificateAuthority;
  readonly logger: Logger;
}

interface AdmissionReview {
  apiVersion?: string;
  request?: { uid?: string; operation?: string; object?: V1Pod; namespace?: string };
}

/** The AdmissionReview answer for one request (pure, for tests). */
export function admissionResponse(review: AdmissionReview, options: BurstOptions): Record<string, unknown> {
  const uid = review.request?.uid;
  if (typeof uid !== 'string' || !uid) throw new RangeError('request.uid is missing');
  const pod = review.request?.object;
  const patch = review.request?.operation === 'CREATE' && pod ? burstPatch(pod, options) : undefined;
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: {
      uid,
      allowed: true,
      ...(patch
        ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') }
        : {}),
    },
  };
}

export class WebhookServer {
  private readonly options: WebhookServerOptions;
  private server: Server | undefined;
  /** The CA that signed the serving certificate: the configuration's caBundle. */
  caBundle = '';
  /** Pods mutated so far (tests read it). */
  mutated = 0;

  constructor(options: WebhookServerOptions) {
    if (!(options.port > 0 && options.port < 65536)) throw new Error('webhook: port must be 1-65535');
    if (options.subjectAltNames.length === 0) throw new Error('webhook: needs at least one subject alt name');
    this.options = options;
  }

  get port(): number {
    const address = this.server?.address();
    return typeof address === 'object' && address ? address.port : this.options.port;
  }

  async start(signal: AbortSignal): Promise<void> {
    const ca = this.options.authority ?? (await CertificateAuthority.create('spillway-webhook-ca'));
    const serving = await ca.issue({
      commonName: 'spillway-webhook',
      subjectAltNames: this.options.subjectAltNames,
      usages: ['server'],
      validForDays: 3650,
    });
    this.caBundle = ca.certificatePem;
    const server = createServer(
      { key: serving.privateKeyPem, cert: serving.certificatePem, minVersion: 'TLSv1.2' },
      (req, res) => void this.handle(req, res),
    );
    server.on('clientError', (_error, socket) => socket.destroy());
    this.server = server;
    await listen(server, this.options.port, this.options.bindAddress);
    signal.addEventListener('abort', () => this.stop(), { once: true });
    this.options.logger.info({ address: this.options.bindAddress, port: this.port }, 'burst webhook serving');
  }

  stop(): void {
    this.server?.close();
    this.server?.closeAllConnections();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const url = new URL(req.url ?? '/', 'https://webhook');
    if (url.pathname !== MUTATE_PATH) return reply(404, { message: `no such path: ${url.pathname}` });
    if (req.method !== 'POST') return reply(405, { message: 'use POST' });
    let body: Buffer;
    try {
      body = await readBody(req);
    } catch (error) {
      return reply(413, { message: messageOf(error) });
    }
    let review: AdmissionReview;
    try {
      review = JSON.parse(body.toString('utf8')) as AdmissionReview;
    } catch {
      return reply(400, { message: 'the body is not JSON' });
    }
    try {
      const answer = admissionResponse(review, this.options.burstOptions());
      if ((answer.response as { patch?: string }).patch) {
        this.mutated++;
        this.options.logger.debug(
          { pod: `${review.request?.namespace}/${review.request?.object?.metadata?.generateName ?? ''}` },
          'burst pod mutated',
        );
      }
      reply(200, answer);
    } catch (error) {
      reply(400, { message: messageOf(error) });
    }
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error(`body larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
