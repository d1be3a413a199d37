// How the node Spillway has differs from the node it wants: what a status write must remove, which
// annotations record what Spillway manages, and whether the status already says it all. Pure.
import type { V1Node, V1Taint } from '@kubernetes/client-node';
import { parseResourceList, resourceListsEqual } from '../kube/quantity.ts';
import { conditionsEqual, type NodeCondition } from './conditions.ts';
import { ANNOTATION_MANAGED_LABELS, ANNOTATION_MANAGED_TAINTS, type DesiredNode, taintKey } from './forge.ts';

/** A merge patch for a map: the desired entries, and null for every entry that must go. */
export function withRemovals(
  current: Record<string, string> | undefined,
  desired: Record<string, string> | undefined,
): Record<string, string | null> {
  const result: Record<string, string | null> = { ...desired };
  for (const key of Object.keys(current ?? {})) if (!(key in result)) result[key] = null;
  return result;
}

export function splitList(value: string | undefined): string[] {
  return value ? value.split(',').filter(Boolean) : [];
}

export function managedAnnotations(desired: DesiredNode): Record<string, string> {
  return {
    ...desired.annotations,
    [ANNOTATION_MANAGED_LABELS]: Object.keys(desired.labels).sort().join(','),
    [ANNOTATION_MANAGED_TAINTS]: desired.taints.map(taintKey).sort().join(','),
  };
}

export function normalizeTaints(taints: readonly V1Taint[]): string[] {
  return taints.map((t) => `${t.key}=${t.value ?? ''}:${t.effect}`).sort();
}

/** Whether the node's status already says what we would write (heartbeat times aside). */
export function statusEqual(node: V1Node, desired: DesiredNode): boolean {
  const status = node.status ?? {};
  const quantities = (list: unknown) => parseResourceList(list as Record<string, string> | undefined);
  return (
    conditionsEqual(status.conditions as NodeCondition[] | undefined, desired.conditions) &&
    resourceListsEqual(quantities(status.capacity), quantities(desired.status.capacity)) &&
    resourceListsEqual(quantities(status.allocatable), quantities(desired.status.allocatable)) &&
    covers(status.addresses, desired.status.addresses) &&
    status.daemonEndpoints?.kubeletEndpoint?.Port === desired.status.daemonEndpoints?.kubeletEndpoint?.Port &&
    covers(status.nodeInfo, desired.status.nodeInfo)
  );
}

/** Every field of `expected` is in `actual` with the same value (key order and extra server fields aside). */
export function covers(actual: unknown, expected: unknown): boolean {
  if (Array.isArray(expected)) {
    return (
      Array.isArray(actual) &&
      actual.length === expected.length &&
      expected.every((e, i) => covers(actual[i], e))
    );
  }
  if (expected && typeof expected === 'object') {
    if (!actual || typeof actual !== 'object') return false;
    return Object.entries(expected).every(([key, value]) =>
      covers((actual as Record<string, unknown>)[key], value),
    );
  }
  return actual === expected;
}
