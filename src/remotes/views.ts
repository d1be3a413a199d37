// One ClusterView per remote API server, shared by every virtual node configured for it. Configuring
// one cluster as five virtual nodes (five shares of it, or a benchmark) used to run five informers of
// all its pods: five copies of every pod in memory and five times the watch decoding.
//
// The view has a client of its own: it outlives any one remote (a remote restarting or leaving does
// not cut the others' watches), and it only lists and watches, so it needs no fence and no share of a
// remote's write budget. It reads with the credentials of a virtual node that still uses it: the most
// recent to start or rotate them, and another one's when that node leaves (its token may be revoked).
import type { Logger } from 'pino';
import { ClusterClient } from '../kube/client.ts';
import type { KubeConfig } from '../kube/credentials.ts';
import { ClusterView, RemoteView } from '../node/remote-view.ts';

interface Shared {
  readonly client: ClusterClient;
  readonly view: ClusterView;
  readonly controller: AbortController;
  /** Virtual node → the credentials its remote was configured with. */
  readonly readers: Map<string, KubeConfig>;
  /** Whose credentials the client uses now. */
  credentialsOf: string;
}

export interface RemoteViewsOptions {
  readonly hostClusterName: string;
  readonly logger: Logger;
  readonly qps?: number;
  readonly burst?: number;
  readonly userAgent: (remoteName: string) => string;
}

export function serverOf(kubeConfig: KubeConfig): string {
  const server = kubeConfig.getCurrentCluster()?.server.replace(/\/+$/, '');
  if (!server) throw new Error('kubeconfig has no current cluster');
  return server;
}

export class RemoteViews {
  private readonly options: RemoteViewsOptions;
  private readonly shared = new Map<string, Shared>();

  constructor(options: RemoteViewsOptions) {
    if (!options.hostClusterName) throw new Error('remote views: hostClusterName is required');
    this.options = options;
  }

  /** Clusters watched now (for tests and status). */
  get clusters(): number {
    return this.shared.size;
  }

  /**
   * The view one virtual node reads its remote through: it takes the shared view of its server when
   * started, and gives it back when its signal aborts.
   */
  view(reader: {
    remoteName: string;
    nodeName: string;
    kubeConfig: () => KubeConfig;
    onChange: () => void;
  }): RemoteView {
    return new RemoteView({
      nodeName: reader.nodeName,
      onChange: reader.onChange,
      acquire: (signal) => this.acquire(reader.remoteName, reader.nodeName, reader.kubeConfig(), signal),
    });
  }

  /** A reader's remote has new credentials: the shared client takes them (they are the newest). */
  useCredentials(nodeName: string, kubeConfig: KubeConfig): void {
    const shared = this.shared.get(serverOf(kubeConfig));
    if (!shared?.readers.has(nodeName)) return;
    shared.readers.set(nodeName, kubeConfig);
    shared.client.useCredentials(kubeConfig);
    shared.credentialsOf = nodeName;
  }

  private acquire(remoteName: string, nodeName: string, kubeConfig: KubeConfig, signal: AbortSignal) {
    const server = serverOf(kubeConfig);
    let shared = this.shared.get(server);
    if (shared?.readers.has(nodeName)) {
      throw new Error(`virtual node ${nodeName} already reads ${server}`);
    }
    if (!shared) {
      const logger = this.options.logger.child({ remote: remoteName, server });
      const client = new ClusterClient({
        name: remoteName,
        kubeConfig,
        logger,
        qps: this.options.qps,
        burst: this.options.burst,
        userAgent: this.options.userAgent(remoteName),
      });
      const view = new ClusterView({ client, hostClusterName: this.options.hostClusterName, logger });
      shared = {
        client,
        view,
        controller: new AbortController(),
        readers: new Map(),
        credentialsOf: nodeName,
      };
      this.shared.set(server, shared);
      view.start(shared.controller.signal);
    } else {
      shared.client.useCredentials(kubeConfig);
      shared.credentialsOf = nodeName;
    }
    shared.readers.set(nodeName, kubeConfig);
    const entry = shared;
    if (signal.aborted) queueMicrotask(() => this.release(server, entry, nodeName));
    else signal.addEventListener('abort', () => this.release(server, entry, nodeName), { once: true });
    return shared.view;
  }

  private release(server: string, shared: Shared, nodeName: string): void {
    shared.readers.delete(nodeName);
    if (shared.readers.size === 0) {
      shared.controller.abort();
      shared.client.close();
      if (this.shared.get(server) === shared) this.shared.delete(server);
      return;
    }
    if (shared.credentialsOf === nodeName) {
      const [next, kubeConfig] = [...shared.readers][shared.readers.size - 1] as [string, KubeConfig];
      shared.client.useCredentials(kubeConfig);
      shared.credentialsOf = next;
    }
  }
}
