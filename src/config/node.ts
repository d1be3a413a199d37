// The `node` section: how every virtual node looks and how its health is judged.
import { z } from 'zod';
import { labels, regex, taint } from './fields.ts';

export const DEFAULT_TAINT = {
  key: 'virtual-kubelet.io/provider',
  value: 'spillway',
  effect: 'NoSchedule',
} as const;

/** Labels of remote nodes never copied onto the virtual node: per-node identity and deprecated aliases. */
export const DEFAULT_EXCLUDED_LABELS =
  '^(kubernetes\\.io/hostname|beta\\.kubernetes\\.io/.*|node\\.kubernetes\\.io/exclude-.*|node-role\\.kubernetes\\.io/.*|kwok\\.x-k8s\\.io/.*|type)$';

export const nodeSection = z
  .strictObject({
    taints: z.array(taint).default([DEFAULT_TAINT]),
    labels: labels.default({}),
    excludeLabels: regex.default(DEFAULT_EXCLUDED_LABELS),
    deleteOnShutdown: z.boolean().default(false),
    remoteUnreachableGraceSeconds: z.number().positive().default(30),
    probeIntervalSeconds: z.number().positive().default(5),
    leaseDurationSeconds: z.number().int().positive().default(40),
    leaseRenewIntervalSeconds: z.number().positive().default(10),
    /** Node status is written only on change, and at most this often. */
    statusMinIntervalSeconds: z.number().min(0).default(1),
  })
  .prefault({});
