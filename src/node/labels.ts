// The virtual node's labels: Spillway's own, every label all schedulable remote nodes share (so that a
// nodeSelector on topology.kubernetes.io/region works), and labels from configuration. Pure functions.
import { LABEL_CLUSTER, LABEL_MANAGED_BY, MANAGED_BY_VALUE } from '../ownership.ts';
import type { RemoteNode } from './capacity.ts';

/** Labels every schedulable remote node carries with the same value, minus the excluded ones. */
export function commonLabels(nodes: readonly RemoteNode[], exclude: RegExp): Record<string, string> {
  const [first, ...rest] = nodes;
  if (!first) return {};
  const common: Record<string, string> = {};
  for (const [key, value] of Object.entries(first.labels)) {
    if (exclude.test(key)) continue;
    if (rest.every((node) => node.labels[key] === value)) common[key] = value;
  }
  return common;
}

/** The most frequent value (ties broken alphabetically), for os/arch when the remote is mixed. */
function majority(values: readonly (string | undefined)[], fallback: string): string {
  const counts = new Map<string, number>();
  for (const value of values) if (value) counts.set(value, (counts.get(value) ?? 0) + 1);
  const sorted = [...counts].sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
  return sorted[0]?.[0] ?? fallback;
}

export function platformOf(nodes: readonly RemoteNode[]): { os: string; arch: string } {
  return {
    os: majority(
      nodes.map((n) => n.operatingSystem ?? n.labels['kubernetes.io/os']),
      'linux',
    ),
    arch: majority(
      nodes.map((n) => n.architecture ?? n.labels['kubernetes.io/arch']),
      'amd64',
    ),
  };
}

export interface NodeLabelInputs {
  readonly nodeName: string;
  readonly remoteName: string;
  readonly schedulableNodes: readonly RemoteNode[];
  readonly exclude: RegExp;
  /** Labels from configuration (node-wide, then per remote; later wins). */
  readonly configured: readonly Readonly<Record<string, string>>[];
}

/** Later sources win: shared remote labels, then configuration, then Spillway's own (which nothing overrides). */
export function nodeLabels(inputs: NodeLabelInputs): Record<string, string> {
  const { os, arch } = platformOf(inputs.schedulableNodes);
  return {
    ...commonLabels(inputs.schedulableNodes, inputs.exclude),
    ...Object.assign({}, ...inputs.configured),
    type: 'virtual-kubelet',
    'kubernetes.io/role': 'agent',
    'kubernetes.io/hostname': inputs.nodeName,
    'kubernetes.io/os': os,
    'kubernetes.io/arch': arch,
    [LABEL_CLUSTER]: inputs.remoteName,
    [LABEL_MANAGED_BY]: MANAGED_BY_VALUE,
  };
}
