// The host caches that workloads on virtual nodes need besides their pods, ConfigMaps and Secrets:
// Namespaces (the offloading policy), Services and EndpointSlices (reflected into remotes), claims,
// volumes and StorageClasses (provisioned in remotes). One set per host client, shared by every remote.
import type { Logger } from 'pino';
import type { ClusterClient } from './kube/client.ts';
import type { EventRecorder, EventTarget } from './kube/events.ts';
import { HostNamespaces } from './namespaces/host-namespaces.ts';
import { HostServices } from './services/host-services.ts';
import { HostVolumes } from './storage/host-volumes.ts';

export interface WorkloadCaches {
  readonly namespaces: HostNamespaces;
  readonly services: HostServices;
  readonly volumes: HostVolumes;
}

export function workloadCaches(
  host: ClusterClient,
  hostClusterName: string,
  logger: Logger,
  signal: AbortSignal,
): WorkloadCaches {
  const namespaces = new HostNamespaces({ host, logger });
  namespaces.start(signal);
  const services = new HostServices({ host, logger });
  services.start(signal);
  const volumes = new HostVolumes({ host, hostClusterName, logger });
  volumes.start(signal);
  return { namespaces, services, volumes };
}

/** Warning events about objects (a host Service, claim, namespace), each said once until it changes. */
export class Warnings {
  private readonly events: EventRecorder;
  private readonly said = new Map<string, string>();

  constructor(events: EventRecorder) {
    this.events = events;
  }

  /** Records the warning unless the object's last one said the same. */
  report(target: EventTarget, reason: string, message: string): void {
    const key = `${target.kind}/${target.namespace ?? ''}/${target.name}`;
    if (this.said.get(key) === message) return;
    this.said.set(key, message);
    void this.events.record(target, 'Warning', reason, message);
  }

  /** The object is fine again: its next warning is said. */
  clear(target: EventTarget): void {
    this.said.delete(`${target.kind}/${target.namespace ?? ''}/${target.name}`);
  }
}
