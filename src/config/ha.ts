// The `ha` section: several replicas share the remotes through one Lease per remote in Spillway's
// namespace (sharding); a replica that dies loses its remotes to the others once its leases expire.
import { z } from 'zod';

export const haSection = z
  .strictObject({
    enabled: z.boolean().default(false),
    /** This replica's name in the Leases (default: the host name and a random suffix). */
    identity: z.string().min(1).max(128).optional(),
    /** How long a Lease holds without renewal; a dead replica's remotes move after this. */
    leaseDurationSeconds: z.number().min(2).max(300).default(10),
    /** A replica that could not renew for this long stops writing for the remote (fencing). */
    renewDeadlineSeconds: z.number().min(1).max(300).default(6),
    /** How often Leases are renewed and free remotes looked for. */
    retryPeriodSeconds: z.number().min(0.2).max(60).default(2),
  })
  .refine((ha) => ha.renewDeadlineSeconds < ha.leaseDurationSeconds, {
    message: 'renewDeadlineSeconds must be less than leaseDurationSeconds',
    path: ['renewDeadlineSeconds'],
  })
  .refine((ha) => ha.retryPeriodSeconds < ha.renewDeadlineSeconds, {
    message: 'retryPeriodSeconds must be less than renewDeadlineSeconds',
    path: ['retryPeriodSeconds'],
  })
  .prefault({});
