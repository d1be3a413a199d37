// Dynamic remote clusters: a Secret in Spillway's namespace of the host cluster, labelled
// `spillway.dev/remote-cluster` (its value, or else the Secret's name, is the remote's name) and holding
// a kubeconfig under `kubeconfig`, adds a remote cluster at run time. Deleting the Secret drains the
// remote (its delegates and copies deleted, its host pods failed, its node deleted): Spillway holds the
// Secret with a finalizer until that is done, so the credentials outlive a restart in the middle. The
// annotation `spillway.dev/remove: force` on the Secret removes a remote gone for good without asking it.
import { createHash } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { isNotFound, messageOf, TerminalError } from '../kube/errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import { Informer, trimMetadata } from '../kube/informer.ts';
import { ConfigError, kubeConfigFromString } from '../kube/kubeconfig.ts';
import { WorkQueue } from '../queue/workqueue.ts';
import type { Retirement } from './registry.ts';
import type { RemoteSpec } from './remote.ts';

export const LABEL_REMOTE_CLUSTER = 'spillway.dev/remote-cluster';
export const ANNOTATION_NODE_NAME = 'spillway.dev/node-name';
export const SECRET_KUBECONFIG_KEY = 'kubeconfig';
/** Holds a remote-cluster Secret until its remote has been drained. */
export const FINALIZER_DRAIN = 'spillway.dev/drain-remote';
/** `force` on a remote-cluster Secret: its removal asks nothing of the remote (gone for good). */
export const ANNOTATION_REMOVE = 'spillway.dev/remove';

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Where discovered remotes go: the registry itself, or, with high availability, the shared catalog. */
export interface RemoteSink {
  upsert(spec: RemoteSpec): Promise<unknown>;
  /**
   * Takes the remote out of service. True once that is done here (its Secret may go); false when it is
   * not done yet or not this process's to do (another replica owns it): asked again later.
   */
  retire(name: string, how: Retirement): Promise<boolean>;
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
  /** Secret key → the remote name it started, to drain the right remote once the Secret is gone. */
  private readonly started = new Map<string, string>();
  /** Secret key → its remote's removal under way. */
  private readonly removals = new Map<string, Promise<void>>();
  /** UIDs of Secrets whose remote has been removed (their informer may still show them a moment). */
  private readonly removed = new Set<string>();

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

  private async reconcile(key: string): Promise<{ requeueAfter?: number } | undefined> {
    const secret = this.secrets.get(key);
    const previousName = this.started.get(key);
    if (!secret) {
      if (previousName) {
        // Deleted without our finalizer (someone removed it): drained with the credentials in hand.
        this.started.delete(key);
        this.options.logger.info(
          { secret: key, remote: previousName },
          'remote cluster Secret deleted; draining remote',
        );
        void this.options.registry.retire(previousName, {});
      }
      return undefined;
    }
    const name = secret.metadata?.labels?.[LABEL_REMOTE_CLUSTER] || secret.metadata?.name || '';
    if (secret.metadata?.deletionTimestamp) return this.remove(key, secret, name);
    let spec: RemoteSpec;
    try {
      spec = this.specOf(key, secret, name);
    } catch (error) {
      throw this.invalid(key, secret, name, error);
    }
    if (previousName && previousName !== name) void this.options.registry.retire(previousName, {});
    // Only a usable Secret is held: its deletion then waits for the drain of its remote.
    await this.holdWithFinalizer(secret);
    try {
      await this.options.registry.upsert(spec);
    } catch (error) {
      throw this.invalid(key, secret, name, error);
    }
    this.started.set(key, name);
    return undefined;
  }

  private specOf(key: string, secret: V1Secret, name: string): RemoteSpec {
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
    const nodeName = nodeNameOf(secret, name);
    return {
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
    };
  }

  /** Says on the Secret why it cannot be used; the key is not retried until the Secret changes. */
  private invalid(key: string, secret: V1Secret, name: string, error: unknown): TerminalError {
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
    return new TerminalError(message, { cause: error });
  }

  /** Adds our finalizer (resourceVersion precondition), so deleting the Secret waits for the drain. */
  private async holdWithFinalizer(secret: V1Secret): Promise<void> {
    const finalizers = secret.metadata?.finalizers ?? [];
    if (finalizers.includes(FINALIZER_DRAIN)) return;
    await this.options.host.patch(
      `/api/v1/namespaces/${secret.metadata?.namespace}/secrets/${secret.metadata?.name}`,
      {
        metadata: {
          resourceVersion: secret.metadata?.resourceVersion,
          finalizers: [...finalizers, FINALIZER_DRAIN],
        },
      },
      'merge',
    );
  }

  /**
   * The Secret is being deleted: its remote is drained (or force-removed), then our finalizer goes and
   * the Secret with it. The single discovery worker is never blocked: the removal runs on its own.
   */
  private remove(key: string, secret: V1Secret, name: string): { requeueAfter?: number } | undefined {
    if (!(secret.metadata?.finalizers ?? []).includes(FINALIZER_DRAIN)) return undefined;
    if (this.removed.has(secret.metadata?.uid ?? '')) return undefined;
    if (this.removals.has(key)) return { requeueAfter: 5_000 };
    const force = secret.metadata?.annotations?.[ANNOTATION_REMOVE] === 'force';
    const nodeName = nodeNameOf(secret, name);
    const { registry, logger } = this.options;
    const removal = (async () => {
      let spec: RemoteSpec | undefined;
      if (!force) {
        try {
          spec = this.specOf(key, secret, name);
        } catch (error) {
          // Never usable, so nothing of it ran: there is nothing to drain.
          logger.warn(
            { secret: key, err: messageOf(error) },
            'deleted remote cluster Secret was never usable',
          );
        }
      }
      logger.info({ secret: key, remote: name, force }, 'remote cluster Secret deleted; removing remote');
      const done = await registry.retire(name, force ? { force: { nodeName } } : { spec });
      if (!done) return; // elsewhere, or a shutdown ended the drain: asked again
      this.started.delete(key);
      const uid = secret.metadata?.uid ?? '';
      this.removed.add(uid);
      const current = this.secrets.get(key) ?? secret;
      try {
        await this.options.host.patch(
          `/api/v1/namespaces/${secret.metadata?.namespace}/secrets/${secret.metadata?.name}`,
          {
            metadata: {
              resourceVersion: current.metadata?.resourceVersion,
              finalizers: (current.metadata?.finalizers ?? []).filter((f) => f !== FINALIZER_DRAIN),
            },
          },
          'merge',
        );
      } catch (error) {
        if (isNotFound(error)) return;
        this.removed.delete(uid);
        throw error;
      }
      logger.info({ secret: key, remote: name }, 'remote cluster removed; released its Secret');
    })()
      .catch((error: unknown) => {
        logger.warn(
          { secret: key, remote: name, err: messageOf(error) },
          'removing remote cluster failed; retrying',
        );
      })
      .finally(() => {
        this.removals.delete(key);
        // Done: look at the Secret once more (it is gone, or its finalizer is). Not done: the
        // reconcile's requeue asks again in 5 s, without spinning on another replica's remote.
        if (this.removed.has(secret.metadata?.uid ?? '')) this.queue.add(key);
      });
    this.removals.set(key, removal);
    return { requeueAfter: 5_000 };
  }
}

function nodeNameOf(secret: V1Secret, remoteName: string): string {
  return secret.metadata?.annotations?.[ANNOTATION_NODE_NAME] || `spillway-${remoteName}`;
}
