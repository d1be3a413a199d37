// The MutatingWebhookConfiguration that sends opted-in pod creations to Spillway, with tight selectors
// so no other pod ever reaches it: pods in namespaces labelled spillway.dev/burst=enabled, and pods
// annotated spillway.dev/burst: "enabled" elsewhere (a CEL match condition, evaluated by the API
// server). failurePolicy Ignore: Spillway being down never blocks a pod.
import type { V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { isNotFound } from '../kube/errors.ts';
import { LABEL_MANAGED_BY, MANAGED_BY_VALUE } from '../ownership.ts';
import { ANNOTATION_BURST, LABEL_BURST } from './mutation.ts';

const PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';

export type WebhookClientConfig =
  | { readonly url: string; readonly caBundle: string }
  | {
      readonly service: { namespace: string; name: string; port: number; path: string };
      readonly caBundle: string;
    };

/** The same endpoint at another path (the namespace policy's mutation). */
function atPath(clientConfig: WebhookClientConfig, path: string): WebhookClientConfig {
  if ('url' in clientConfig) {
    const url = new URL(clientConfig.url);
    url.pathname = path;
    return { ...clientConfig, url: url.toString() };
  }
  return { ...clientConfig, service: { ...clientConfig.service, path } };
}

function client(clientConfig: WebhookClientConfig) {
  const caBundle = Buffer.from(clientConfig.caBundle).toString('base64');
  return 'url' in clientConfig
    ? { url: clientConfig.url, caBundle }
    : { service: clientConfig.service, caBundle };
}

/**
 * The configuration: burst namespaces, burst pods elsewhere and, when some host namespaces restrict
 * their remotes (spillway.dev/remote-clusters), every new pod of those namespaces (by name: a namespace
 * selector cannot read annotations), for the policy's required node affinity.
 */
export function webhookConfiguration(
  name: string,
  clientConfig: WebhookClientConfig,
  timeoutSeconds: number,
  policyNamespaces: readonly string[] = [],
  policyPath = '/mutate-pods-policy',
): V1MutatingWebhookConfiguration {
  const common = {
    clientConfig: client(clientConfig),
    rules: [
      {
        operations: ['CREATE'],
        apiGroups: [''],
        apiVersions: ['v1'],
        resources: ['pods'],
        scope: 'Namespaced',
      },
    ],
    failurePolicy: 'Ignore',
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    timeoutSeconds,
    reinvocationPolicy: 'Never',
  };
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name, labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE } },
    webhooks: [
      {
        ...common,
        name: 'namespaces.burst.spillway.dev',
        namespaceSelector: { matchLabels: { [LABEL_BURST]: 'enabled' } },
      },
      {
        ...common,
        name: 'pods.burst.spillway.dev',
        // Namespaces that opted in as a whole are the first webhook's; system pods are never touched.
        namespaceSelector: {
          matchExpressions: [
            { key: LABEL_BURST, operator: 'NotIn', values: ['enabled'] },
            {
              key: 'kubernetes.io/metadata.name',
              operator: 'NotIn',
              values: ['kube-system', 'kube-node-lease'],
            },
          ],
        },
        matchConditions: [
          {
            name: 'annotated-burst',
            expression: `has(object.metadata.annotations) && '${ANNOTATION_BURST}' in object.metadata.annotations && object.metadata.annotations['${ANNOTATION_BURST}'] == 'enabled'`,
          },
        ],
      },
      ...(policyNamespaces.length > 0
        ? [
            {
              ...common,
              clientConfig: client(atPath(clientConfig, policyPath)),
              name: 'remotes.policy.spillway.dev',
              namespaceSelector: {
                matchExpressions: [
                  {
                    key: 'kubernetes.io/metadata.name',
                    operator: 'In',
                    values: [...policyNamespaces].sort(),
                  },
                ],
              },
            },
          ]
        : []),
    ],
  } as V1MutatingWebhookConfiguration;
}

/** Creates or updates the configuration; one that Spillway did not create is left alone (an error). */
export async function installWebhookConfiguration(
  host: ClusterClient,
  desired: V1MutatingWebhookConfiguration,
  logger: Logger,
): Promise<void> {
  const name = desired.metadata?.name as string;
  let existing: V1MutatingWebhookConfiguration | undefined;
  try {
    existing = await host.get<V1MutatingWebhookConfiguration>(`${PATH}/${name}`);
  } catch (error) {
    if (!isNotFound(error)) throw new Error(`reading MutatingWebhookConfiguration ${name}`, { cause: error });
  }
  if (!existing) {
    await host.create(PATH, desired);
    logger.info({ name }, 'installed the burst webhook configuration');
    return;
  }
  if (existing.metadata?.labels?.[LABEL_MANAGED_BY] !== MANAGED_BY_VALUE) {
    throw new Error(
      `MutatingWebhookConfiguration ${name} exists and is not Spillway's (no ${LABEL_MANAGED_BY} label); not touching it`,
    );
  }
  await host.replace(`${PATH}/${name}`, {
    ...desired,
    metadata: {
      ...desired.metadata,
      uid: existing.metadata?.uid,
      resourceVersion: existing.metadata?.resourceVersion,
    },
  });
  logger.info({ name }, 'updated the burst webhook configuration');
}
