// The namespace policy at admission, pure: a pod of a namespace with spillway.dev/remote-clusters gets a
// required node affinity that allows real nodes and the virtual nodes of the remotes matching the
// patterns, and nothing else. Each of the pod's own required terms is kept, ANDed with the policy (terms
// are ORed, so every term is split in two: on a real node, or on an allowed virtual node).
import type { V1Affinity, V1NodeSelectorTerm, V1Pod } from '@kubernetes/client-node';
import { LABEL_CLUSTER } from '../ownership.ts';
import type { JsonPatchOperation } from '../webhook/mutation.ts';
import { matchesPatterns } from './policy.ts';

/** Set on pods the policy constrained, with the patterns applied. */
export const ANNOTATION_POLICY_APPLIED = 'spillway.dev/remote-clusters-applied';

const REAL_NODE = { key: 'type', operator: 'NotIn', values: ['virtual-kubelet'] };

export function policyAffinity(
  affinity: V1Affinity | undefined,
  allowedRemotes: readonly string[],
): V1Affinity {
  const allowed =
    allowedRemotes.length > 0
      ? [{ key: LABEL_CLUSTER, operator: 'In', values: [...allowedRemotes].sort() }]
      : [];
  const choices = [[REAL_NODE], ...(allowed.length > 0 ? [allowed] : [])];
  const own = affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  const terms: V1NodeSelectorTerm[] =
    own.length === 0
      ? choices.map((matchExpressions) => ({ matchExpressions }))
      : own.flatMap((term) =>
          choices.map((extra) => ({
            ...term,
            matchExpressions: [...(term.matchExpressions ?? []), ...extra],
          })),
        );
  return {
    ...affinity,
    nodeAffinity: {
      ...affinity?.nodeAffinity,
      requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms },
    },
  };
}

/** The JSON patch for a new pod of a namespace with remote patterns, or undefined when it needs none. */
export function policyPatch(
  pod: V1Pod,
  patterns: readonly string[] | undefined,
  remoteNames: readonly string[],
): JsonPatchOperation[] | undefined {
  if (patterns === undefined || pod.spec?.nodeName) return undefined;
  if (pod.metadata?.annotations?.[ANNOTATION_POLICY_APPLIED] !== undefined) return undefined;
  const allowed = remoteNames.filter((name) => matchesPatterns(name, patterns));
  return [
    { op: 'add', path: '/spec/affinity', value: policyAffinity(pod.spec?.affinity, allowed) },
    {
      op: 'add',
      path: '/metadata/annotations',
      value: { ...pod.metadata?.annotations, [ANNOTATION_POLICY_APPLIED]: patterns.join(',') },
    },
  ];
}
