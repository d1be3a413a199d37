// What changes on a running pod through its subresources, pure: ephemeral containers (`kubectl debug`,
// the ephemeralcontainers subresource) and in-place resize (the resize subresource). The host pod is
// the desired state; the delegate gets what it lacks through the same subresources, and its status
// (ephemeral container states, allocated and actual resources, PodResizePending/InProgress) comes back
// with the rest of the status.
import type {
  V1Container,
  V1EphemeralContainer,
  V1Pod,
  V1ResourceRequirements,
} from '@kubernetes/client-node';
import { parseResourceList, resourceListsEqual } from '../kube/quantity.ts';

export interface ContainerResize {
  readonly name: string;
  /** A sidecar (restartable init container) rather than an app container. */
  readonly init: boolean;
  readonly resources: V1ResourceRequirements;
}

/** The desired ephemeral containers the delegate does not have yet (they can only be added, never changed). */
export function ephemeralToAdd(desired: V1Pod, current: V1Pod): V1EphemeralContainer[] {
  const have = new Set((current.spec?.ephemeralContainers ?? []).map((c) => c.name));
  return (desired.spec?.ephemeralContainers ?? []).filter((c) => !have.has(c.name));
}

const sameResources = (a: V1ResourceRequirements | undefined, b: V1ResourceRequirements | undefined) =>
  resourceListsEqual(parseResourceList(a?.requests), parseResourceList(b?.requests)) &&
  resourceListsEqual(parseResourceList(a?.limits), parseResourceList(b?.limits));

/** Containers (and sidecars, which resize too) whose resources the host pod changed. */
export function resizeOf(desired: V1Pod, current: V1Pod): ContainerResize[] {
  const resizable = (pod: V1Pod): [V1Container, boolean][] => [
    ...(pod.spec?.containers ?? []).map((c): [V1Container, boolean] => [c, false]),
    ...(pod.spec?.initContainers ?? [])
      .filter((c) => c.restartPolicy === 'Always')
      .map((c): [V1Container, boolean] => [c, true]),
  ];
  const have = new Map(resizable(current).map(([c, init]) => [`${init}/${c.name}`, c]));
  const changes: ContainerResize[] = [];
  for (const [container, init] of resizable(desired)) {
    const existing = have.get(`${init}/${container.name}`);
    if (!existing || sameResources(container.resources, existing.resources)) continue;
    changes.push({ name: container.name, init, resources: container.resources ?? {} });
  }
  return changes;
}
