// Opt-in spill-over, decided by the host's own scheduler: a burst pod tolerates the virtual nodes'
// taints and *prefers* real nodes, so local nodes fill first and the surplus lands on virtual nodes.
// It also gets short not-ready/unreachable tolerations, so when a remote cluster fails its pods are
// evicted and replaced quickly. Pure: a pod in, a JSON patch out.
import type { V1Affinity, V1Pod, V1PreferredSchedulingTerm, V1Toleration } from '@kubernetes/client-node';
import { isDaemonSetPod } from '../pods/admission.ts';

export const LABEL_BURST = 'spillway.dev/burst';
export const ANNOTATION_BURST = 'spillway.dev/burst';
/** Set on pods the webhook changed, with what it did (for people reading the pod). */
export const ANNOTATION_BURST_MUTATED = 'spillway.dev/burst-mutated';

/** What the kube-apiserver's DefaultTolerationSeconds admission gives every pod. */
const DEFAULT_TOLERATION_SECONDS = 300;
const EVICTION_TAINTS = ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable'];

export interface BurstOptions {
  /** Taints of the virtual nodes (burst pods tolerate them). */
  readonly virtualTaints: readonly { key: string; value?: string; effect: string }[];
  /** Weight of the preference for real nodes (1–100). */
  readonly preferLocalWeight: number;
  /** Optional preference among remote clusters: remote name → weight (1–100). */
  readonly remoteWeights: Readonly<Record<string, number>>;
  /** How long a burst pod stays on a not-ready or unreachable node before it is evicted. */
  readonly notReadyTolerationSeconds: number;
}

export interface JsonPatchOperation {
  readonly op: 'add';
  readonly path: string;
  readonly value: unknown;
}

function tolerates(
  tolerations: readonly V1Toleration[],
  taint: BurstOptions['virtualTaints'][number],
): boolean {
  return tolerations.some(
    (t) =>
      (t.effect === undefined || t.effect === '' || t.effect === taint.effect) &&
      (t.key === undefined || t.key === '' ? t.operator === 'Exists' : t.key === taint.key) &&
      (t.operator === 'Exists' || (t.value ?? '') === (taint.value ?? '')),
  );
}

function burstTolerations(existing: readonly V1Toleration[], options: BurstOptions): V1Toleration[] {
  const tolerations = existing.filter(
    // The admission defaults (300 s) give way to the burst eviction time; explicit choices stay.
    (t) =>
      !(
        EVICTION_TAINTS.includes(t.key ?? '') &&
        t.effect === 'NoExecute' &&
        t.tolerationSeconds === DEFAULT_TOLERATION_SECONDS
      ),
  );
  for (const key of EVICTION_TAINTS) {
    if (!tolerations.some((t) => t.key === key && t.effect === 'NoExecute')) {
      tolerations.push({
        key,
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: options.notReadyTolerationSeconds,
      });
    }
  }
  for (const taint of options.virtualTaints) {
    if (!tolerates(tolerations, taint))
      tolerations.push({ key: taint.key, operator: 'Exists', effect: taint.effect });
  }
  return tolerations;
}

function burstAffinity(existing: V1Affinity | undefined, options: BurstOptions): V1Affinity {
  const preferred: V1PreferredSchedulingTerm[] = [
    ...(existing?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []),
  ];
  const add = (weight: number, key: string, operator: string, values: string[]) => {
    const present = preferred.some((term) =>
      term.preference.matchExpressions?.some(
        (e) => e.key === key && e.operator === operator && e.values?.join() === values.join(),
      ),
    );
    if (!present) preferred.push({ weight, preference: { matchExpressions: [{ key, operator, values }] } });
  };
  add(options.preferLocalWeight, 'type', 'NotIn', ['virtual-kubelet']);
  for (const [remote, weight] of Object.entries(options.remoteWeights)) {
    add(weight, 'spillway.dev/cluster', 'In', [remote]);
  }
  return {
    ...existing,
    nodeAffinity: { ...existing?.nodeAffinity, preferredDuringSchedulingIgnoredDuringExecution: preferred },
  };
}

/** The JSON patch that makes a pod a burst pod, or undefined when it must be left alone. */
export function burstPatch(pod: V1Pod, options: BurstOptions): JsonPatchOperation[] | undefined {
  // Already placed (a static or bound pod), or meant for every node (DaemonSet): not ours to steer.
  if (pod.spec?.nodeName || isDaemonSetPod(pod)) return undefined;
  if (pod.metadata?.annotations?.[ANNOTATION_BURST] === 'disabled') return undefined;
  const tolerations = burstTolerations(pod.spec?.tolerations ?? [], options);
  const affinity = burstAffinity(pod.spec?.affinity, options);
  const annotations = {
    ...pod.metadata?.annotations,
    [ANNOTATION_BURST_MUTATED]: `tolerates virtual nodes, prefers real ones, evicted after ${options.notReadyTolerationSeconds}s on a failed node`,
  };
  return [
    { op: 'add', path: '/spec/tolerations', value: tolerations },
    { op: 'add', path: '/spec/affinity', value: affinity },
    { op: 'add', path: '/metadata/annotations', value: annotations },
  ];
}
