// The `webhook` section: the mutating admission webhook that turns opted-in pods into burst pods.
import { z } from 'zod';
import { dnsLabel, ipAddress, port } from './fields.ts';

export const webhookSection = z
  .strictObject({
    enabled: z.boolean().default(false),
    /** Where it listens (default: kubelet.bindAddress or kubelet.address). */
    bindAddress: ipAddress().optional(),
    port: port.default(9443),
    /** How the host API server reaches it: a URL (default https://<kubelet.address>:<port>/mutate-pods) or a Service. */
    url: z.url({ protocol: /^https$/ }).optional(),
    service: z
      .strictObject({
        namespace: z.string().regex(dnsLabel),
        name: z.string().regex(dnsLabel),
        port: port.default(443),
      })
      .optional(),
    /** Create or update the MutatingWebhookConfiguration at start. */
    install: z.boolean().default(true),
    timeoutSeconds: z.number().int().min(1).max(30).default(5),
    /** Burst pods leave a not-ready or unreachable node after this long (the default is 300 s). */
    notReadyTolerationSeconds: z.number().int().min(0).default(60),
    /** How strongly burst pods prefer real nodes over virtual ones (1-100). */
    preferLocalWeight: z.number().int().min(1).max(100).default(100),
  })
  .refine((w) => !(w.url && w.service), { message: 'set at most one of url or service' })
  .prefault({});
