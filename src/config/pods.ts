// The `pods` section: how pods bound to a virtual node are mirrored.
import { z } from 'zod';

export const podsSection = z
  .strictObject({
    /** Remote namespace = prefix + host namespace. */
    namespacePrefix: z
      .string()
      .regex(
        /^([a-z0-9][-a-z0-9]*)?$/,
        'must be lowercase letters, digits and "-", starting with a letter or digit',
      )
      .max(30)
      .default(''),
    workers: z.number().int().min(1).max(256).default(16),
    /** What to do with a delegate the remote cannot schedule for longer than timeoutSeconds. */
    unschedulable: z
      .strictObject({
        timeoutSeconds: z.number().positive().default(300),
        policy: z.enum(['wait', 'fail']).default('wait'),
      })
      .prefault({}),
    /** A new delegate's Pending status waits this long, so a quick start costs one host write. */
    statusSettleMilliseconds: z.number().int().min(0).max(10_000).default(1000),
    /** Every pod is reconciled again this often, and orphans are collected, even without events. */
    resyncSeconds: z.number().positive().default(300),
    /** DaemonSet pods on a virtual node: refused (Failed, DaemonSetPodRefused) unless allowed. */
    daemonSets: z.enum(['refuse', 'allow']).default('refuse'),
    /** controller.kubernetes.io/pod-deletion-cost on mirrored pods, so scale-down removes them first; null: leave it. */
    deletionCost: z.number().int().min(-2147483648).max(2147483647).nullable().default(-100),
    /**
     * A host pod whose delegate's fate is unknown (its remote cannot be reached) stays Terminating, as a
     * partitioned kubelet's pods do, unless the virtual node is tainted node.kubernetes.io/out-of-service
     * or its controller's kind is listed here (released once its grace period is over).
     */
    partition: z
      .strictObject({
        releaseKinds: z
          .array(
            z
              .string()
              .regex(/^[A-Z][A-Za-z0-9]*$/, 'must be a controller kind, such as ReplicaSet or Job')
              .refine((kind) => kind !== 'StatefulSet', {
                message:
                  'StatefulSet pods are never released while their delegate may still run (at most one pod per identity)',
              })
              .refine((kind) => kind !== 'Pod', {
                message: 'bare pods (no controller) are never released while their delegate may still run',
              }),
          )
          .default([]),
      })
      .prefault({}),
  })
  .prefault({});
