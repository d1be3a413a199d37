// Field validators shared by every section of the configuration.
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseQuantity } from '../kube/quantity.ts';

export const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
export const dnsSubdomain = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
export const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

export const quantity = z.union([z.string(), z.number()]).refine(
  (value) => {
    try {
      parseQuantity(value);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a valid Kubernetes quantity (e.g. 4, 500m, 16Gi)' },
);

export const regex = z.string().refine(
  (value) => {
    try {
      new RegExp(value);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a valid regular expression' },
);

export const ipAddress = (message = 'must be an IP address') =>
  z.string().refine((value) => isIP(value) !== 0, message);

export const port = z.number().int().min(1).max(65535);

export const labels = z.record(z.string(), z.string().regex(labelValue, 'not a valid label value'));

export const taint = z.strictObject({
  key: z.string().min(1),
  value: z.string().optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']),
});
