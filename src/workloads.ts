// The host caches that workloads on virtual nodes need besides their pods, ConfigMaps and Secrets:
// Namespaces (the offloading policy), Services and EndpointSlices (reflected into remotes), claims,
// volumes and StorageClasses (provisioned in remotes). One set per host client, shared by every remote.
import type { Logger } from 'pino';
import type { ClusterClient } from './kube/client.ts';
import { HostNamespaces } from './namespaces/host-namespaces.ts';
import { HostServices } from './services/host-services.ts';

export interface WorkloadCaches {
  readonly namespaces: HostNamespaces;
  readonly services: HostServices;
}

export function workloadCaches(host: ClusterClient, logger: Logger, signal: AbortSignal): WorkloadCaches {
  const namespaces = new HostNamespaces({ host, logger });
  namespaces.start(signal);
  const services = new HostServices({ host, logger });
  services.start(signal);
  return { namespaces, services };
}
