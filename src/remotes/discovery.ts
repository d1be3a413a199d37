// Dynamic remote clusters: a Secret in Spillway's namespace of the host cluster, labelled
// `spillway.dev/remote-cluster` (its value, or else the Secret's name, is the remote's name) and holding
// a kubeconfig under `kubeconfig`, adds a remote cluster at run time; deleting the Secret removes it and
// its virtual node. No restart.
import { createHash } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { messageOf, TerminalError } from '../kube/errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import { Informer, trimMetadata } from '../kube/informer.ts';
import { ConfigError, kubeConfigFromString } from '../kube/kubeconfig.ts';
import { WorkQueue } from '../queue/workqueue.ts';
import type { RemoteSpec } from './remote.ts';

export const LABEL_REMOTE_CLUSTER = 'spillway.dev/remote-cluster';
export const ANNOTATION_NODE_NAME = 'spillway.dev/node-name';
export const SECRET_KUBECONFIG_KEY = 'kubeconfig';

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Where discovered remotes go: the registry itself, or, with high availability, the shared catalog. */
export interface RemoteSink {
  upsert(spec: RemoteSpec): Promise<unknown>;
  remove(name: string, options: { deleteNode: boolean }): Promise<void>;
}

export interface DiscoveryOptions {
  readonly host: ClusterClient;
  readonly namespace: string;
  readonly registry: RemoteSink;
  readonly events: EventRecorder;
  readonly logger: Logger;
  /** Names of remotes from the configuration file, which a Secret may not take over. */
  readonly staticNames: ReadonlySet<string>;
}

export class RemoteDiscovery {
  private readonly options: DiscoveryOptions;
  private readonly secrets: Informer<V1Secret>;
  private readonly queue: WorkQueue;
  /** Secret key → the remote name it started, to stop the right remote once the Secret is gone. */
  private readonly started = new Map<string, string>();

  constructor(options: DiscoveryOptions) {
    this.options = options;
    this.secrets = new Informer<V1Secret>({
      name: 'host/remote-cluster-secrets',
      client: options.host,
      path: `/api/v1/namespaces/${options.namespace}/secrets`,
      labelSelector: LABEL_REMOTE_CLUSTER,
      transform: trimMetadata,
      logger: options.logger,
    });
    this.queue = new WorkQueue({
      name: 'remote-discovery',
      workers: 1,
      logger: options.logger,
      reconcile: (key) => this.reconcile(key),
    });
    this.secrets.on((_event, secret) =>
      this.queue.add(`${secret.metadata?.namespace}/${secret.metadata?.name}`),
    );
  }

  get ready(): Promise<void> {
    return this.secrets.ready;
  }

  start(signal: AbortSignal): void {
    this.secrets.start(signal);
    this.queue.start(signal);
  }

  private async reconcile(key: string): Promise<undefined> {
    const secret = this.secrets.get(key);
    const previousName = this.started.get(key);
    if (!secret) {
      if (previousName) {
        this.started.delete(key);
        this.options.logger.info(
          { secret: key, remote: previousName },
          'remote cluster Secret deleted; removing remote',
        );
        await this.options.registry.remove(previousName, { deleteNode: true });
      }
      return undefined;
    }
    const name = secret.metadata?.labels?.[LABEL_REMOTE_CLUSTER] || secret.metadata?.name || '';
    try {
      if (!dnsLabel.test(name))
        throw new ConfigError(`label ${LABEL_REMOTE_CLUSTER}`, `"${name}" is not a DNS label`);
      if (this.options.staticNames.has(name)) {
        throw new ConfigError(
          `label ${LABEL_REMOTE_CLUSTER}`,
          `remote "${name}" is defined in the configuration file`,
        );
      }
      const encoded = secret.data?.[SECRET_KUBECONFIG_KEY];
      if (!encoded) throw new ConfigError(`data.${SECRET_KUBECONFIG_KEY}`, 'missing');
      const content = Buffer.from(encoded, 'base64').toString('utf8');
      const kubeConfig = kubeConfigFromString(content, `Secret ${key} data.${SECRET_KUBECONFIG_KEY}`);
      const nodeName = secret.metadata?.annotations?.[ANNOTATION_NODE_NAME] || `spillway-${name}`;
      if (previousName && previousName !== name)
        await this.options.registry.remove(previousName, { deleteNode: true });
      await this.options.registry.upsert({
        name,
        nodeName,
        kubeConfig,
        labels: {},
        source: `Secret ${key}`,
        // A rotated token or certificate (`spillway join --rotate`) changes only the credentials: the
        // client swaps them in; another server or node name restarts the remote.
        fingerprint: createHash('sha256')
          .update(kubeConfig.getCurrentCluster()?.server ?? '')
          .update('\0')
          .update(nodeName)
          .digest('hex'),
        credentials: createHash('sha256').update(content).digest('hex'),
      });
      this.started.set(key, name);
    } catch (error) {
      const message = `cannot use Secret ${key} as remote cluster "${name}": ${messageOf(error)}`;
      this.options.logger.error({ secret: key }, message);
      void this.options.events.record(
        {
          kind: 'Secret',
          name: secret.metadata?.name ?? '',
          namespace: secret.metadata?.namespace,
          uid: secret.metadata?.uid,
        },
        'Warning',
        'InvalidRemoteCluster',
        message,
      );
      throw new TerminalError(message, { cause: error });
    }
    return undefined;
  }
}
