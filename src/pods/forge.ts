// Host pod in, delegate pod out. Pure: everything it needs to know about the clusters comes in the
// context. The delegate keeps the user's intent (images, resources, a region or GPU selector, spread
// constraints) and loses what only makes sense in the host (its node, the virtual node's taint and
// labels, the host's service-account token, priority values, controller links).
import type {
  V1NodeSelectorRequirement,
  V1NodeSelectorTerm,
  V1Pod,
  V1PodSpec,
  V1Toleration,
} from '@kubernetes/client-node';
import {
  LABEL_HOST_CLUSTER,
  LABEL_HOST_POD_UID,
  LABEL_MANAGED_BY,
  LABEL_VIRTUAL_NODE,
  MANAGED_BY_VALUE,
} from '../ownership.ts';
import type { Reference } from './references.ts';
import type { TokenMode } from './tokens.ts';
import { forgeWorkload, type WorkloadContext, workloadReferences } from './workload.ts';

export const ANNOTATION_HOST_NAMESPACE = 'spillway.dev/host-namespace';
export const ANNOTATION_HOST_NAME = 'spillway.dev/host-name';
/** Ranks a pod among its ReplicaSet's replicas for scale-down (lower goes first). */
export const ANNOTATION_DELETION_COST = 'controller.kubernetes.io/pod-deletion-cost';
/** Controller labels of the host pod, kept out of the delegate's labels (see CONTROLLER_LABELS). */
export const ANNOTATION_HOST_CONTROLLER_LABELS = 'spillway.dev/host-controller-labels';
/**
 * The label and annotation keys Spillway copied from the host pod. Only these are ever changed or
 * removed on the delegate: the remote's own admission adds labels too (topology labels at binding),
 * and those are not Spillway's to take away.
 */
export const ANNOTATION_MANAGED_LABELS = 'spillway.dev/managed-labels';
export const ANNOTATION_MANAGED_ANNOTATIONS = 'spillway.dev/managed-annotations';

/**
 * Labels that controllers put in their selectors to find "their" pods. A delegate keeps none of them,
 * so no ReplicaSet, StatefulSet or Job in the remote that happens to share a template with the host's
 * (the same manifest deployed in both clusters) can adopt, scale down or delete it. They are kept in
 * an annotation for reference.
 */
export const CONTROLLER_LABELS = [
  'pod-template-hash',
  'controller-revision-hash',
  'statefulset.kubernetes.io/pod-name',
  'apps.kubernetes.io/pod-index',
  'batch.kubernetes.io/controller-uid',
  'batch.kubernetes.io/job-name',
  'controller-uid',
  'job-name',
];

export interface ForgeContext {
  readonly hostClusterName: string;
  /** The virtual node the host pod is bound to. */
  readonly nodeName: string;
  readonly namespacePrefix: string;
  /** Node labels that only the virtual node has (Spillway's own, configured ones): selectors on them are dropped. */
  readonly virtualOnlyLabelKeys: ReadonlySet<string>;
  /** Taint keys of the virtual node: tolerations of them are dropped. */
  readonly virtualTaintKeys: ReadonlySet<string>;
  /** Whether a PriorityClass of this name exists in the remote cluster. */
  readonly priorityClassExists: (name: string) => boolean;
  /** The remote namespace of a host namespace (default: namespacePrefix + name; see src/namespaces/). */
  readonly remoteNamespace?: (hostNamespace: string) => string;
  /** Tokens, downward API and claims (undefined: no token, host-only fields resolved, claims left as they are). */
  readonly workload?: WorkloadContext;
}

export function delegateNamespace(hostNamespace: string, prefix: string): string {
  return `${prefix}${hostNamespace}`;
}

function isVirtualOnlyKey(key: string, context: ForgeContext): boolean {
  return key.startsWith('spillway.dev/') || context.virtualOnlyLabelKeys.has(key);
}

function keepRequirement(requirement: V1NodeSelectorRequirement, context: ForgeContext): boolean {
  return !isVirtualOnlyKey(requirement.key, context);
}

/** A term that loses all its requirements must go: an empty term would match no node at all. */
function cleanTerm(term: V1NodeSelectorTerm, context: ForgeContext): V1NodeSelectorTerm | undefined {
  const matchExpressions = term.matchExpressions?.filter((r) => keepRequirement(r, context));
  // matchFields can only name nodes (metadata.name), and host node names mean nothing remotely.
  const cleaned: V1NodeSelectorTerm = {};
  if (matchExpressions?.length) cleaned.matchExpressions = matchExpressions;
  return cleaned.matchExpressions ? cleaned : undefined;
}

function cleanAffinity(spec: V1PodSpec, context: ForgeContext): void {
  const nodeAffinity = spec.affinity?.nodeAffinity;
  if (!nodeAffinity || !spec.affinity) return;
  const required = nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution;
  if (required) {
    const terms = required.nodeSelectorTerms
      .map((t) => cleanTerm(t, context))
      .filter((t): t is V1NodeSelectorTerm => t !== undefined);
    // Terms are ORed: if any term targeted only the virtual node, the pod matched through it and
    // the remaining terms must not narrow placement in the remote.
    const anyDropped = terms.length < required.nodeSelectorTerms.length;
    if (terms.length === 0 || anyDropped) delete nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution;
    else required.nodeSelectorTerms = terms;
  }
  const preferred = nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution
    ?.map((p) => ({ ...p, preference: cleanTerm(p.preference, context) }))
    .filter((p): p is typeof p & { preference: V1NodeSelectorTerm } => p.preference !== undefined);
  if (preferred?.length) nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution = preferred;
  else delete nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution;
  if (Object.keys(nodeAffinity).length === 0) delete spec.affinity.nodeAffinity;
  if (Object.keys(spec.affinity).length === 0) delete spec.affinity;
}

function keepToleration(toleration: V1Toleration, context: ForgeContext): boolean {
  return !(toleration.key && context.virtualTaintKeys.has(toleration.key));
}

/** The ConfigMaps and Secrets the delegate will use (the host's token volumes only in token mode host). */
export function delegateReferences(hostSpec: V1PodSpec | undefined, mode: TokenMode = 'none'): Reference[] {
  return workloadReferences(hostSpec, mode);
}

export function delegatePod(hostPod: V1Pod, context: ForgeContext): V1Pod {
  const metadata = hostPod.metadata ?? {};
  const spec = structuredClone(hostPod.spec) as V1PodSpec;

  const labels: Record<string, string> = {};
  const controllerLabels: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata.labels ?? {})) {
    if (CONTROLLER_LABELS.includes(key)) controllerLabels[key] = value;
    else if (!key.startsWith('spillway.dev/')) labels[key] = value;
  }
  const copiedLabels = Object.keys(labels).sort().join(',');
  labels[LABEL_MANAGED_BY] = MANAGED_BY_VALUE;
  labels[LABEL_HOST_CLUSTER] = context.hostClusterName;
  labels[LABEL_HOST_POD_UID] = metadata.uid ?? '';
  labels[LABEL_VIRTUAL_NODE] = context.nodeName;

  const annotations: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata.annotations ?? {})) {
    // The deletion cost ranks the pod among its host controller's replicas; it means nothing remotely.
    if (!key.startsWith('spillway.dev/') && key !== ANNOTATION_DELETION_COST) annotations[key] = value;
  }
  annotations[ANNOTATION_MANAGED_ANNOTATIONS] = Object.keys(annotations).sort().join(',');
  annotations[ANNOTATION_MANAGED_LABELS] = copiedLabels;
  annotations[ANNOTATION_HOST_NAMESPACE] = metadata.namespace ?? '';
  annotations[ANNOTATION_HOST_NAME] = metadata.name ?? '';
  if (Object.keys(controllerLabels).length > 0) {
    annotations[ANNOTATION_HOST_CONTROLLER_LABELS] = JSON.stringify(controllerLabels);
  }

  delete spec.nodeName;
  if (spec.nodeSelector) {
    for (const key of Object.keys(spec.nodeSelector))
      if (isVirtualOnlyKey(key, context)) delete spec.nodeSelector[key];
    if (Object.keys(spec.nodeSelector).length === 0) delete spec.nodeSelector;
  }
  cleanAffinity(spec, context);
  spec.tolerations = spec.tolerations?.filter((t) => keepToleration(t, context));
  if (spec.tolerations?.length === 0) delete spec.tolerations;

  // Priority values are resolved by the remote's admission from its own PriorityClasses.
  delete spec.priority;
  delete spec.preemptionPolicy;
  if (spec.priorityClassName && !context.priorityClassExists(spec.priorityClassName))
    delete spec.priorityClassName;
  // Set by the host's RuntimeClass admission; the remote's computes its own.
  delete spec.overhead;
  // Nothing in the remote sets the host's readiness gates; Spillway evaluates them on the host pod.
  delete spec.readinessGates;
  delete spec.schedulingGates;

  // Tokens, references to copies, host-only downward fields, claims; ephemeral containers are forged
  // too, and added through their subresource once the delegate exists (see live.ts).
  forgeWorkload(
    spec,
    hostPod,
    { hostClusterName: context.hostClusterName, nodeName: context.nodeName },
    context.workload,
  );

  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: metadata.name,
      namespace:
        context.remoteNamespace?.(metadata.namespace ?? 'default') ??
        delegateNamespace(metadata.namespace ?? 'default', context.namespacePrefix),
      labels,
      annotations,
    },
    spec,
  };
}

/** What Kubernetes lets change on a running pod: images, activeDeadlineSeconds, added tolerations, labels, annotations. */
export interface MutableFields {
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly images: Record<string, string>;
  readonly activeDeadlineSeconds: number | undefined;
  readonly tolerations: V1Toleration[];
}

export function mutableFields(pod: V1Pod): MutableFields {
  const images: Record<string, string> = {};
  for (const c of pod.spec?.initContainers ?? []) images[`init/${c.name}`] = c.image ?? '';
  for (const c of pod.spec?.containers ?? []) images[`app/${c.name}`] = c.image ?? '';
  return {
    labels: pod.metadata?.labels ?? {},
    annotations: pod.metadata?.annotations ?? {},
    images,
    activeDeadlineSeconds: pod.spec?.activeDeadlineSeconds,
    tolerations: pod.spec?.tolerations ?? [],
  };
}

function managedKeys(pod: V1Pod, annotation: string): Set<string> {
  return new Set((pod.metadata?.annotations?.[annotation] ?? '').split(',').filter(Boolean));
}

/** Sets what differs from `want`; removes only keys Spillway set before (`managed`) and no longer wants. */
function changes(
  have: Record<string, string>,
  want: Record<string, string>,
  managed: ReadonlySet<string>,
): Record<string, string | null> | undefined {
  const result: Record<string, string | null> = {};
  for (const [key, value] of Object.entries(want)) if (have[key] !== value) result[key] = value;
  for (const key of managed) if (!(key in want) && key in have) result[key] = null;
  return Object.keys(result).length > 0 ? result : undefined;
}

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/**
 * The patch that brings the delegate's mutable fields to what the host pod asks for, or undefined when
 * they agree. `desired` is the forged delegate, `current` the delegate as it is in the remote.
 */
export function delegateUpdate(desired: V1Pod, current: V1Pod): Record<string, unknown> | undefined {
  const want = mutableFields(desired);
  const have = mutableFields(current);
  const patch: { metadata?: Record<string, unknown>; spec?: Record<string, unknown> } = {};
  const managedLabels = managedKeys(current, ANNOTATION_MANAGED_LABELS);
  const managedAnnotations = managedKeys(current, ANNOTATION_MANAGED_ANNOTATIONS);
  const labels = changes(have.labels, want.labels, managedLabels);
  if (labels) patch.metadata = { labels };
  const annotations = changes(have.annotations, want.annotations, managedAnnotations);
  if (annotations) patch.metadata = { ...patch.metadata, annotations };
  const imagesChanged = !sameRecord(want.images, have.images);
  if (imagesChanged || want.activeDeadlineSeconds !== have.activeDeadlineSeconds) {
    patch.spec = {};
  }
  if (imagesChanged) {
    const withImages = (containers: { name: string; image?: string }[] | undefined, kind: string) =>
      containers?.map((c) => ({ name: c.name, image: want.images[`${kind}/${c.name}`] ?? c.image }));
    // Containers are patched by the name merge key, so only images change.
    Object.assign(patch.spec as object, {
      containers: withImages(current.spec?.containers, 'app'),
      ...(current.spec?.initContainers
        ? { initContainers: withImages(current.spec.initContainers, 'init') }
        : {}),
    });
  }
  if (want.activeDeadlineSeconds !== have.activeDeadlineSeconds) {
    (patch.spec as Record<string, unknown>).activeDeadlineSeconds = want.activeDeadlineSeconds ?? null;
  }
  const haveTolerations = new Set(have.tolerations.map((t) => JSON.stringify(t)));
  const added = want.tolerations.filter((t) => !haveTolerations.has(JSON.stringify(t)));
  if (added.length > 0) {
    patch.spec = { ...patch.spec, tolerations: [...have.tolerations, ...added] };
  }
  return patch.metadata || patch.spec ? patch : undefined;
}
