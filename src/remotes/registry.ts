// The running remote clusters, by name. Remotes come and go at run time (discovered Secrets); the
// registry starts, restarts (when credentials or settings change) and stops them.
import type { Logger } from 'pino';
import type { Fence } from '../ha/fence.ts';
import { RemoteCluster, type RemoteContext, type RemoteSpec } from './remote.ts';

export class RemoteRegistry {
  private readonly context: RemoteContext;
  private readonly remotes = new Map<string, RemoteCluster>();
  private readonly logger: Logger;

  constructor(context: RemoteContext) {
    this.context = context;
    this.logger = context.logger;
  }

  get(name: string): RemoteCluster | undefined {
    return this.remotes.get(name);
  }

  list(): RemoteCluster[] {
    return [...this.remotes.values()];
  }

  /** The remote whose virtual node has this name. */
  byNodeName(nodeName: string): RemoteCluster | undefined {
    return this.list().find((remote) => remote.spec.nodeName === nodeName);
  }

  /**
   * Starts the remote, or restarts it when its spec changed; new credentials alone are swapped in
   * without a restart. A node name taken by another remote is refused. With a fence (high
   * availability), the remote writes only while this replica holds its Lease.
   */
  async upsert(spec: RemoteSpec, fence?: Fence): Promise<RemoteCluster> {
    const existing = this.remotes.get(spec.name);
    if (existing && existing.spec.fingerprint === spec.fingerprint) {
      if (existing.spec.credentials !== spec.credentials) existing.useCredentials(spec);
      return existing;
    }
    const clash = this.list().find((r) => r.spec.nodeName === spec.nodeName && r.spec.name !== spec.name);
    if (clash) {
      throw new Error(
        `node name ${spec.nodeName} is already used by remote ${clash.name} (${clash.spec.source})`,
      );
    }
    if (existing) {
      this.logger.info({ remote: spec.name }, 'remote cluster changed; restarting it');
      await existing.stop({ deleteNode: existing.spec.nodeName !== spec.nodeName });
    }
    const remote = new RemoteCluster(spec, this.context, fence);
    this.remotes.set(spec.name, remote);
    remote.start();
    return remote;
  }

  async remove(name: string, { deleteNode }: { deleteNode: boolean }): Promise<void> {
    const remote = this.remotes.get(name);
    if (!remote) return;
    this.remotes.delete(name);
    await remote.stop({ deleteNode });
  }

  /**
   * Stops the remote without draining it or touching its node (high availability: another replica
   * takes it over; its pods keep running).
   */
  async stop(name: string): Promise<void> {
    const remote = this.remotes.get(name);
    if (!remote) return;
    this.remotes.delete(name);
    await remote.stop({ deleteNode: false });
  }

  async stopAll({ deleteNodes }: { deleteNodes: boolean }): Promise<void> {
    const all = this.list();
    this.remotes.clear();
    await Promise.all(all.map((remote) => remote.stop({ deleteNode: deleteNodes })));
  }
}
