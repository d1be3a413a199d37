// The running remote clusters, by name. Remotes come and go at run time (discovered Secrets); the
// registry starts them, restarts them when their credentials or settings change, and ends them in one
// of two ways (see remote.ts): stop() hands a remote over and touches nothing; drain() removes it from
// service (its delegates and copies deleted, its host pods failed, its node deleted). forceRemove() is
// the drain of a remote that is gone for good: nothing is asked of it.
import type { V1Node } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Fence } from '../ha/fence.ts';
import { spillwayUserAgent } from '../kube/client.ts';
import { messageOf } from '../kube/errors.ts';
import { ANNOTATION_OWNER, isOwnedBy } from '../node/forge.ts';
import { LABEL_MANAGED_BY, MANAGED_BY_VALUE } from '../ownership.ts';
import { forceRemove } from './force.ts';
import { RemoteCluster, type RemoteContext, type RemoteSpec } from './remote.ts';
import { RemoteViews } from './views.ts';

/** How a remote leaves service. */
export interface Retirement {
  /** Its spec, to start it for its drain where it does not run (absent: it never could run). */
  readonly spec?: RemoteSpec;
  /** Gone for good: its host pods are failed and its node deleted, nothing is asked of it. */
  readonly force?: { readonly nodeName: string };
}

export class RemoteRegistry {
  private readonly context: RemoteContext;
  private readonly remotes = new Map<string, RemoteCluster>();
  private readonly removals = new Map<string, Promise<void>>();
  private readonly controller = new AbortController();
  private readonly logger: Logger;

  constructor(context: Omit<RemoteContext, 'views'>) {
    const { config, logger } = context;
    const views = new RemoteViews({
      hostClusterName: config.hostClusterName,
      logger,
      qps: config.remoteQps,
      burst: config.remoteBurst,
      userAgent: (remote) => spillwayUserAgent(config.hostClusterName, remote),
    });
    this.context = { ...context, views };
    this.logger = logger;
  }

  get(name: string): RemoteCluster | undefined {
    return this.remotes.get(name);
  }

  list(): RemoteCluster[] {
    return [...this.remotes.values()];
  }

  /** Remote API servers watched for capacity: one per cluster, however many virtual nodes it backs. */
  get watchedClusters(): number {
    return this.context.views.clusters;
  }

  /** The remote whose virtual node has this name. */
  byNodeName(nodeName: string): RemoteCluster | undefined {
    return this.list().find((remote) => remote.spec.nodeName === nodeName);
  }

  /** Whether a removal (drain or force) of this remote is under way. */
  removing(name: string): boolean {
    return this.removals.has(name);
  }

  /**
   * Starts the remote, or restarts it when its spec changed (a hand-over to the new spec: nothing is
   * deleted); a renamed node drains the old one first; new credentials alone are swapped in without a
   * restart. A node name taken by another remote is refused. With a fence (high availability), the
   * remote writes only while this replica holds its Lease.
   */
  async upsert(spec: RemoteSpec, fence?: Fence): Promise<RemoteCluster> {
    const existing = this.remotes.get(spec.name);
    if (existing && existing.spec.fingerprint === spec.fingerprint) {
      if (existing.spec.credentials !== spec.credentials) existing.useCredentials(spec);
      return existing;
    }
    if (this.removals.has(spec.name)) throw new Error(`remote ${spec.name} is being removed`);
    const clash = this.list().find((r) => r.spec.nodeName === spec.nodeName && r.spec.name !== spec.name);
    if (clash) {
      throw new Error(
        `node name ${spec.nodeName} is already used by remote ${clash.name} (${clash.spec.source})`,
      );
    }
    if (existing) {
      this.logger.info({ remote: spec.name }, 'remote cluster changed; restarting it');
      if (existing.spec.nodeName !== spec.nodeName) await existing.drain(this.controller.signal);
      else await existing.stop();
    }
    const remote = new RemoteCluster(spec, this.context, fence);
    this.remotes.set(spec.name, remote);
    remote.start();
    return remote;
  }

  /** Hand-over: the remote stops and is forgotten; nothing is written or deleted. */
  async stop(name: string): Promise<void> {
    const remote = this.remotes.get(name);
    if (!remote) return;
    this.remotes.delete(name);
    await remote.stop();
  }

  /**
   * Removes a running remote from service and forgets it once its node is gone. Idempotent: a drain
   * under way is joined. The remote stays listed meanwhile (logs and exec of its pods keep working).
   */
  drain(name: string): Promise<void> {
    const pending = this.removals.get(name);
    if (pending) return pending;
    const remote = this.remotes.get(name);
    if (!remote) return Promise.resolve();
    const removal = remote
      .drain(this.controller.signal)
      .then(() => {
        if (!this.controller.signal.aborted && this.remotes.get(name) === remote) this.remotes.delete(name);
      })
      .finally(() => this.removals.delete(name));
    this.removals.set(name, removal);
    return removal;
  }

  /**
   * For a remote gone for good: stops it if it runs, then fails its host pods and deletes its node
   * without asking the remote anything (its delegates, if any still run, are left behind).
   */
  forceRemove(name: string, nodeName: string): Promise<void> {
    const pending = this.removals.get(name);
    if (pending) return pending;
    const { config, host, events, logger } = this.context;
    const removal = (async () => {
      await this.stop(name);
      this.logger.warn({ remote: name, node: nodeName }, 'force-removing remote cluster');
      await forceRemove(
        {
          host,
          events,
          hostClusterName: config.hostClusterName,
          remoteName: name,
          nodeName,
          hostIP: config.kubelet.address,
          logger,
        },
        this.controller.signal,
      );
    })().finally(() => this.removals.delete(name));
    this.removals.set(name, removal);
    return removal;
  }

  /**
   * Takes the remote out of service here: drained (started first from its spec when this process does
   * not run it: a restart in the middle of a drain), or force-removed. True once it is gone from this
   * process, so what held it (a Secret's finalizer) may go; false when a shutdown ended the drain (it
   * resumes at the next start).
   */
  async retire(name: string, how: Retirement, fence?: Fence): Promise<boolean> {
    if (how.force) {
      await this.forceRemove(name, how.force.nodeName);
    } else {
      if (!this.remotes.has(name) && how.spec) await this.upsert(how.spec, fence);
      await this.drain(name);
    }
    return !this.remotes.has(name) && !this.controller.signal.aborted;
  }

  /**
   * Says so (a log line and a Warning event on the node) when a virtual node of this host cluster
   * belongs to no remote Spillway runs: its remote was deleted from the configuration without
   * `remove: drain`, so nothing can reach its delegates any more. Nothing is changed.
   */
  async reportUnknownNodes(known: ReadonlySet<string>): Promise<void> {
    const { host, config, events } = this.context;
    try {
      const nodes = await host.get<{ items: V1Node[] }>('/api/v1/nodes', {
        query: { labelSelector: `${LABEL_MANAGED_BY}=${MANAGED_BY_VALUE}` },
      });
      for (const node of nodes.items) {
        if (!isOwnedBy(node, config.hostClusterName)) continue;
        const remote = node.metadata?.annotations?.[ANNOTATION_OWNER]?.split('/')[1] ?? '';
        if (known.has(remote) || this.remotes.has(remote) || this.removals.has(remote)) continue;
        const message =
          `virtual node ${node.metadata?.name} belongs to remote cluster ${remote}, which is no longer configured: ` +
          'its pods stay as they are. Configure it again with remove: drain to drain it, or with remove: force if it is gone for good';
        this.logger.warn({ node: node.metadata?.name, remote }, message);
        await events.record(
          { kind: 'Node', name: node.metadata?.name ?? '', uid: node.metadata?.uid },
          'Warning',
          'RemoteClusterNotConfigured',
          message,
        );
      }
    } catch (error) {
      this.logger.info({ err: messageOf(error) }, 'could not look for virtual nodes of unconfigured remotes');
    }
  }

  /** Shutdown: every remote stops (removals under way resume at the next start). */
  async stopAll({ deleteNodes }: { deleteNodes: boolean }): Promise<void> {
    this.controller.abort();
    const all = this.list();
    this.remotes.clear();
    await Promise.all(
      all.map(async (remote) => {
        await remote.stop();
        if (deleteNodes) await remote.node.deleteNode();
      }),
    );
  }
}
