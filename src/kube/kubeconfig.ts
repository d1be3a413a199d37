// Loading credentials for one cluster: from a kubeconfig file, from a kubeconfig held in a Secret, or
// from the pod's in-cluster service account. Always explicit, never client-node's silent fallback to
// http://localhost:8080, and one KubeConfig object per cluster (never merged: credentials would collide).
import { existsSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { dirname, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

/** A configuration problem, naming the field it comes from. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

function checkServer(kubeConfig: KubeConfig, field: string): KubeConfig {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new ConfigError(field, 'kubeconfig has no current context or cluster');
  let url: URL;
  try {
    url = new URL(cluster.server);
  } catch {
    throw new ConfigError(field, `cluster "${cluster.name}" has a malformed server URL "${cluster.server}"`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && cluster.skipTLSVerify)) {
    throw new ConfigError(
      field,
      `cluster "${cluster.name}" server "${cluster.server}" must be an https:// URL`,
    );
  }
  return kubeConfig;
}

export function kubeConfigFromFile(path: string, field: string): KubeConfig {
  if (!existsSync(path)) throw new ConfigError(field, `file not found: ${path}`);
  const kubeConfig = new KubeConfig();
  try {
    kubeConfig.loadFromFile(path);
  } catch (cause) {
    throw new ConfigError(field, `cannot read kubeconfig ${path}: ${(cause as Error).message}`);
  }
  return checkServer(kubeConfig, field);
}

export function kubeConfigFromString(content: string, field: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  try {
    kubeConfig.loadFromString(content);
  } catch (cause) {
    throw new ConfigError(field, `cannot parse kubeconfig: ${(cause as Error).message}`);
  }
  return checkServer(kubeConfig, field);
}

export const IN_CLUSTER_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * Where the pod's service-account token, CA and namespace are mounted. SPILLWAY_SERVICE_ACCOUNT_DIR
 * moves it, so the in-cluster path can be run (and tested) outside a pod with the same file layout.
 */
export function serviceAccountDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.SPILLWAY_SERVICE_ACCOUNT_DIR ?? dirname(IN_CLUSTER_TOKEN_PATH);
}

export function kubeConfigInCluster(field: string): KubeConfig {
  const dir = serviceAccountDir();
  const { KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port } = process.env;
  if (!host || !existsSync(join(dir, 'token'))) {
    throw new ConfigError(field, 'no kubeconfig given and not running in a cluster (no service account)');
  }
  const kubeConfig = new KubeConfig();
  // As client-node's loadFromCluster, from the chosen directory; the token file is re-read every minute
  // (projected tokens rotate).
  kubeConfig.loadFromClusterAndUser(
    {
      name: 'inCluster',
      server: `https://${isIPv6(host) ? `[${host}]` : host}:${port ?? 443}`,
      caFile: join(dir, 'ca.crt'),
      skipTLSVerify: false,
    },
    { name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile: join(dir, 'token') } } },
  );
  return checkServer(kubeConfig, field);
}

/** The namespace of the pod Spillway runs in, when it runs in a cluster. */
export function inClusterNamespace(): string | undefined {
  const path = join(serviceAccountDir(), 'namespace');
  return existsSync(path) ? readFileSync(path, 'utf8').trim() : undefined;
}
