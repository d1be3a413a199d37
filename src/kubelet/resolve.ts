// Which virtual node, remote cluster and delegate a kubelet API path is about. One server serves every
// virtual node: the pod in the path tells which.
import type { RemoteRegistry } from '../remotes/registry.ts';
import type { RemoteCluster } from '../remotes/remote.ts';
import { badRequest, notFound } from './http-errors.ts';

export interface ResolvedPod {
  readonly remote: RemoteCluster;
  readonly nodeName: string;
  readonly namespace: string;
  readonly name: string;
  /** The delegate in the remote cluster. */
  readonly delegateNamespace: string;
  readonly delegateName: string;
}

export class PodResolver {
  private readonly registry: RemoteRegistry;

  constructor(registry: RemoteRegistry) {
    this.registry = registry;
  }

  nodeNames(): string[] {
    return this.registry.list().map((remote) => remote.spec.nodeName);
  }

  remoteOfNode(nodeName: string): RemoteCluster {
    const remote = this.registry.byNodeName(nodeName);
    if (!remote) throw notFound(`node "${nodeName}" is not served here`);
    return remote;
  }

  /** The virtual node a host pod is bound to, if it is one of ours (nothing else is looked at). */
  nodeOf(namespace: string, name: string): string | undefined {
    for (const remote of this.registry.list()) {
      if (remote.pods.hostPods.get(`${namespace}/${name}`)) return remote.spec.nodeName;
    }
    return undefined;
  }

  /** The pod bound to one of our virtual nodes, with its delegate; 404 if unknown, 400 if not running remotely yet. */
  resolve(namespace: string, name: string, uid?: string): ResolvedPod {
    for (const remote of this.registry.list()) {
      const pod = remote.pods.hostPods.get(`${namespace}/${name}`);
      if (!pod) continue;
      if (uid && pod.metadata?.uid !== uid)
        throw notFound(`pod "${namespace}/${name}" with UID ${uid} not found`);
      const delegate = remote.pods.delegateOf(namespace, name);
      if (!delegate) {
        throw badRequest(`pod "${namespace}/${name}" has no delegate in remote cluster ${remote.name} yet`);
      }
      return {
        remote,
        nodeName: remote.spec.nodeName,
        namespace,
        name,
        delegateNamespace: delegate.namespace,
        delegateName: delegate.name,
      };
    }
    throw notFound(`pod "${namespace}/${name}" not found on the nodes served here`);
  }
}
