// The `kubelet` section: the kubelet HTTPS API the virtual nodes serve.
import { z } from 'zod';
import { ipAddress, port } from './fields.ts';

export const kubeletSection = z
  .strictObject({
    address: ipAddress('must be an IP address the host API server can reach').default('127.0.0.1'),
    port: port.default(10250),
    /** Where the server listens (default: the advertised address). */
    bindAddress: ipAddress().optional(),
    tls: z
      .strictObject({
        /** self-signed (default), csr (issued by the host's kubelet-serving signer), or files. */
        mode: z.enum(['self-signed', 'csr', 'files']).default('self-signed'),
        certFile: z.string().optional(),
        keyFile: z.string().optional(),
        /** With mode csr: Spillway approves its own request (needs the approval permission). */
        approveCsr: z.boolean().default(true),
        csrExpirationSeconds: z.number().int().min(600).optional(),
      })
      .prefault({}),
    /** CA bundle for the API server's client certificate; default: the host's extension-apiserver-authentication. */
    clientCAFile: z.string().optional(),
    maxSessionsPerClient: z.number().int().positive().default(64),
    metrics: z
      .strictObject({
        /** auto (the remote's metrics.k8s.io when served, else its kubelets), metrics-api or kubelet. */
        source: z.enum(['auto', 'metrics-api', 'kubelet']).default('auto'),
      })
      .prefault({}),
  })
  .prefault({});
