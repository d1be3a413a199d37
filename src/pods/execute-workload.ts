// Applies the planner's workload actions (plan-workload.ts), each write with its precondition: the pod's
// own Secret (TokenRequests on the host bound to the host pod, then a create, or a merge patch with the
// Secret's resourceVersion; deletes with its UID), ephemeral containers and resizes through the
// delegate's subresources (execute-subresources.ts). Decides nothing: answers that need a decision are
// remembered (WorkloadMemory) and the key is planned again.
import type { V1Pod, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { isAlreadyExists, isConflict, isNotFound, messageOf, statusCodeOf } from '../kube/errors.ts';
import type { EventType } from '../kube/events.ts';
import { isOwnedObject, LABEL_HOST_POD_UID, LABEL_VIRTUAL_NODE } from '../ownership.ts';
import type { ClusterWrites, NamespaceEnsurer } from './execute.ts';
import { DelegateSubresources } from './execute-subresources.ts';
import { ANNOTATION_HOST_NAME, ANNOTATION_HOST_NAMESPACE } from './forge.ts';
import type { PodMemory } from './memory.ts';
import type { ObjectRef } from './plan.ts';
import {
  ANNOTATION_DOWNWARD_HASH,
  ANNOTATION_TOKENS,
  LABEL_POD_SECRET,
  type PodSecretView,
  type PodSecretWrite,
  podSecretLabels,
  type TokenState,
  viewOf,
} from './pod-secret.ts';
import type { ReflectionScope } from './references.ts';
import type { TokenSource } from './tokens.ts';
import type { WorkloadMemory } from './workload-memory.ts';

export interface WorkloadExecutorOptions {
  readonly host: ClusterWrites;
  readonly remote: ClusterWrites;
  readonly namespaces: NamespaceEnsurer;
  readonly memory: PodMemory;
  readonly workloadMemory: WorkloadMemory;
  readonly scope: ReflectionScope;
  readonly event: (pod: V1Pod, type: EventType, reason: string, message: string) => Promise<void>;
}

const secretPath = (namespace: string, name: string) => `/api/v1/namespaces/${namespace}/secrets/${name}`;
const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

export class WorkloadExecutor {
  private readonly options: WorkloadExecutorOptions;
  readonly counts = {
    tokenRequests: 0,
    podSecretWrites: 0,
    podSecretDeletes: 0,
    ephemeralContainerAdds: 0,
    resizes: 0,
  };

  /** Ephemeral containers and resizes, through the delegate's subresources. */
  readonly subresources: DelegateSubresources;

  constructor(options: WorkloadExecutorOptions) {
    this.options = options;
    this.subresources = new DelegateSubresources(options, this.counts);
  }

  get calls(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0);
  }

  /** Requests what is due, then creates or updates the Secret; 'replan' when an answer needs a decision. */
  async writePodSecret(
    hostPod: V1Pod,
    key: string,
    write: PodSecretWrite,
    log: Logger,
  ): Promise<'replan' | undefined> {
    const { spec, current } = write;
    const uid = hostPod.metadata?.uid ?? '';
    const tokens: Record<string, TokenState> = {};
    for (const source of spec.tokens) {
      const kept = current?.tokens[source.key];
      if (kept && !write.issue.includes(source.key)) tokens[source.key] = kept;
    }
    const data: Record<string, string | null> = {};
    for (const keyName of write.issue) {
      const source = spec.tokens.find((t) => t.key === keyName) as TokenSource;
      let issued: { token: string; state: TokenState };
      try {
        issued = await this.requestToken(hostPod, spec.serviceAccount, source);
      } catch (error) {
        if (
          statusCodeOf(error) === undefined ||
          statusCodeOf(error) === 429 ||
          (statusCodeOf(error) ?? 0) >= 500
        ) {
          throw new Error(`requesting a token for host pod ${key}`, { cause: error });
        }
        this.options.workloadMemory.rememberFailure(key, uid, messageOf(error));
        log.info({ err: messageOf(error) }, 'the host refused a service-account token');
        await this.options.event(
          hostPod,
          'Warning',
          'ServiceAccountTokenFailed',
          `the host refused a token for service account ${spec.serviceAccount}: ${messageOf(error)}`,
        );
        return 'replan';
      }
      data[keyName] = base64(issued.token);
      tokens[keyName] = issued.state;
    }
    if (write.downwardChanged)
      for (const [name, content] of Object.entries(spec.downward)) data[name] = base64(content);
    for (const stale of Object.keys(current?.tokens ?? {})) if (!(stale in tokens)) data[stale] = null;
    const metadata = {
      name: spec.name,
      namespace: spec.namespace,
      labels: podSecretLabels(this.options.scope, uid),
      annotations: podSecretAnnotations(hostPod, tokens, spec.downwardHash),
    };
    const remember = (written: V1Secret) => {
      this.counts.podSecretWrites++;
      this.options.workloadMemory.rememberPodSecret(key, uid, viewOf(written));
    };
    if (!current) {
      await this.options.namespaces.ensure(spec.namespace);
      const body = { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata, data: withoutNulls(data) };
      try {
        remember(
          await this.options.remote.create<V1Secret>(`/api/v1/namespaces/${spec.namespace}/secrets`, body),
        );
        return undefined;
      } catch (error) {
        if (this.options.namespaces.isGone(error)) this.options.namespaces.forget(spec.namespace);
        if (!isAlreadyExists(error))
          throw new Error(`creating the Secret of host pod ${key}`, { cause: error });
        return this.nameTaken(key, uid, spec.namespace, spec.name);
      }
    }
    try {
      remember(
        await this.options.remote.patch<V1Secret>(
          secretPath(spec.namespace, spec.name),
          { metadata: { ...metadata, uid: current.uid, resourceVersion: current.resourceVersion }, data },
          'merge',
        ),
      );
      return undefined;
    } catch (error) {
      if (isNotFound(error)) {
        // Deleted under us: made again on the next round.
        log.debug({ err: messageOf(error) }, "the pod's Secret is gone; making it again");
        this.options.workloadMemory.forgetPodSecret(key);
        return 'replan';
      }
      throw new Error(`updating the Secret of host pod ${key}`, { cause: error });
    }
  }

  /** The create found the name taken: our own Secret the cache has not shown yet, or someone else's. */
  private async nameTaken(key: string, uid: string, namespace: string, name: string): Promise<'replan'> {
    const existing = await this.options.remote.get<V1Secret>(secretPath(namespace, name));
    const labels = existing.metadata?.labels;
    const { hostClusterName, nodeName } = this.options.scope;
    const ours =
      isOwnedObject(labels, hostClusterName) &&
      labels?.[LABEL_VIRTUAL_NODE] === nodeName &&
      labels?.[LABEL_POD_SECRET];
    if (!ours) {
      this.options.workloadMemory.rememberConflict(
        key,
        uid,
        `Secret ${namespace}/${name} exists in the remote cluster and is not this Spillway's (host cluster ${hostClusterName})`,
      );
    } else if (labels?.[LABEL_HOST_POD_UID] === uid) {
      this.options.workloadMemory.rememberPodSecret(key, uid, viewOf(existing));
    } else {
      await this.deletePodSecret({ namespace, name, uid: existing.metadata?.uid ?? '' });
    }
    return 'replan';
  }

  /** A token of the pod's host ServiceAccount, bound to the host pod: it dies with it. */
  private async requestToken(
    hostPod: V1Pod,
    serviceAccount: string,
    source: TokenSource,
  ): Promise<{ token: string; state: TokenState }> {
    const namespace = hostPod.metadata?.namespace ?? '';
    const issuedAt = Date.now();
    const answer = await this.options.host.create<{
      status?: { token?: string; expirationTimestamp?: string };
    }>(`/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: source.audience ? [source.audience] : [],
        expirationSeconds: source.expirationSeconds,
        boundObjectRef: {
          apiVersion: 'v1',
          kind: 'Pod',
          name: hostPod.metadata?.name,
          uid: hostPod.metadata?.uid,
        },
      },
    });
    this.counts.tokenRequests++;
    const token = answer.status?.token;
    if (!token)
      throw new Error(`the host answered a TokenRequest for ${namespace}/${serviceAccount} without a token`);
    const expiresAt =
      Date.parse(answer.status?.expirationTimestamp ?? '') || issuedAt + source.expirationSeconds * 1000;
    return {
      token,
      state: {
        issuedAt,
        expiresAt,
        ...(source.audience ? { audience: source.audience } : {}),
        expirationSeconds: source.expirationSeconds,
      },
    };
  }

  /** Deletes the pod's Secret we saw (UID precondition); gone already or replaced is fine. */
  async deletePodSecret(target: ObjectRef, key?: string): Promise<void> {
    try {
      await this.options.remote.delete(secretPath(target.namespace, target.name), {
        preconditions: { uid: target.uid },
      });
      this.counts.podSecretDeletes++;
    } catch (error) {
      if (!isNotFound(error) && !isConflict(error)) {
        throw new Error(`deleting Secret ${target.namespace}/${target.name}`, { cause: error });
      }
    }
    if (key) this.options.workloadMemory.forgetPodSecret(key);
  }
}

function podSecretAnnotations(
  hostPod: V1Pod,
  tokens: Readonly<Record<string, TokenState>>,
  downwardHash: string,
): Record<string, string> {
  return {
    [ANNOTATION_HOST_NAMESPACE]: hostPod.metadata?.namespace ?? '',
    [ANNOTATION_HOST_NAME]: hostPod.metadata?.name ?? '',
    [ANNOTATION_TOKENS]: JSON.stringify(tokens),
    [ANNOTATION_DOWNWARD_HASH]: downwardHash,
  };
}

function withoutNulls(data: Record<string, string | null>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).filter((e): e is [string, string] => e[1] !== null));
}

export type { PodSecretView };
