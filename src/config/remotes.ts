// The `remotes` section: the remote clusters named in the file (more come from discovered Secrets).
import { z } from 'zod';
import { dnsLabel, dnsSubdomain, labels, quantity, taint } from './fields.ts';

export const share = z
  .strictObject({
    /** Advertise at most this percentage of the remote's schedulable allocatable. */
    percent: z.number().gt(0).max(100).optional(),
    /** Advertise at most these quantities (cpu, memory, pods, extended resources). */
    max: z.record(z.string(), quantity).optional(),
  })
  .optional();

export const remote = z
  .strictObject({
    name: z.string().regex(dnsLabel, 'must be a DNS label (lowercase letters, digits, "-")'),
    kubeconfig: z.string().min(1).optional(),
    secretRef: z
      .strictObject({
        namespace: z.string().regex(dnsLabel).optional(),
        name: z.string().regex(dnsSubdomain),
        key: z.string().min(1).default('kubeconfig'),
      })
      .optional(),
    nodeName: z.string().regex(dnsSubdomain, 'must be a DNS subdomain').optional(),
    labels: labels.default({}),
    taints: z.array(taint).optional(),
    share,
    /** How much burst pods prefer this remote over other remotes (1-100; real nodes always come first). */
    burstWeight: z.number().int().min(1).max(100).optional(),
    /**
     * Take the remote out of service. drain: delete its delegates and reflected copies, fail its host
     * pods (their controllers replace them), delete its node; retried while the remote cannot be
     * reached. force: for a remote gone for good; nothing is asked of it (its delegates, if any still
     * run, are left behind), its host pods are failed and its node deleted. Once done, the entry can go.
     */
    remove: z.enum(['drain', 'force']).optional(),
  })
  .refine(
    // A force removal asks nothing of the remote: its credentials may be gone with it.
    (r) => Boolean(r.kubeconfig) !== Boolean(r.secretRef) || (r.remove === 'force' && !r.kubeconfig),
    { message: 'set exactly one of kubeconfig or secretRef (none is needed with remove: force)' },
  );
