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
    /** Streaming sessions (logs, exec, attach, port-forward, run) open at once, in all. */
    maxSessions: z.number().int().positive().default(10_000),
    /** Streaming sessions open at once for one pod. */
    maxSessionsPerPod: z.number().int().positive().default(500),
    /** Streaming sessions open at once for one direct caller (the API server's relayed sessions excepted). */
    maxSessionsPerClient: z.number().int().positive().default(64),
    /** Users whose requests the host API server relays for everyone (its kubelet client certificate's CN). */
    apiServerUsers: z.array(z.string().min(1)).default(['kube-apiserver-kubelet-client']),
    /** Bytes one session may hold for its slower side (half per direction) before it stops reading the other. */
    streamBufferBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024),
    authentication: z
      .strictObject({
        /** Failed authentications one source address may make per second (sustained). */
        failuresPerSecond: z.number().positive().default(1),
        /** Failed authentications one source address may make in a burst. */
        failureBurst: z.number().int().positive().default(20),
        /** Seconds a rejected token is refused without asking the host again. */
        rejectedTokenCacheSeconds: z.number().int().min(1).max(300).default(10),
      })
      .prefault({}),
    metrics: z
      .strictObject({
        /** auto (the remote's metrics.k8s.io when served, else its kubelets), metrics-api or kubelet. */
        source: z.enum(['auto', 'metrics-api', 'kubelet']).default('auto'),
      })
      .prefault({}),
  })
  .prefault({});
