// Loading credentials for one cluster: from a kubeconfig file, from a kubeconfig held in a Secret, or
// from the pod's in-cluster service account. Always explicit (never a silent fallback to
// http://localhost:8080), one KubeConfig per cluster (never merged: credentials would collide), and
// parsed here with `yaml` rather than by client-node, whose runtime (≈ 50 MiB resident) Spillway does
// not load: only its types are used.
import { existsSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  type ExecConfig,
  type KubeCluster,
  KubeConfig,
  type KubeContext,
  type KubeUser,
} from './credentials.ts';

export { KubeConfig } from './credentials.ts';

/** A configuration problem, naming the field it comes from. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

interface Named<T> {
  name?: string;
  cluster?: T;
  user?: T;
  context?: T;
}

interface RawKubeConfig {
  clusters?: Named<Record<string, unknown>>[];
  users?: Named<Record<string, unknown>>[];
  contexts?: Named<{ cluster?: string; user?: string }>[];
  'current-context'?: string;
}

interface LoadOptions {
  /** Where relative file references are resolved; undefined: file references are refused. */
  readonly baseDir: string | undefined;
  readonly field: string;
}

const str = (value: unknown): string | undefined => (typeof value === 'string' && value ? value : undefined);

function fileOrData(
  entry: Record<string, unknown>,
  fileKey: string,
  dataKey: string,
  options: LoadOptions,
): { file?: string; data?: Buffer } {
  const data = str(entry[dataKey]);
  if (data) return { data: Buffer.from(data, 'base64') };
  const file = str(entry[fileKey]);
  if (!file) return {};
  if (options.baseDir === undefined) {
    throw new ConfigError(options.field, `${fileKey} refers to a file; embed it as ${dataKey} instead`);
  }
  const path = isAbsolute(file) ? file : resolve(options.baseDir, file);
  if (!existsSync(path)) throw new ConfigError(options.field, `${fileKey} ${path}: file not found`);
  return { file: path };
}

function parseCluster(name: string, entry: Record<string, unknown>, options: LoadOptions): KubeCluster {
  const server = str(entry.server);
  if (!server) throw new ConfigError(options.field, `cluster "${name}" has no server`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new ConfigError(options.field, `cluster "${name}" has a malformed server URL "${server}"`);
  }
  const skipTLSVerify = entry['insecure-skip-tls-verify'] === true;
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && skipTLSVerify)) {
    throw new ConfigError(options.field, `cluster "${name}" server "${server}" must be an https:// URL`);
  }
  if (str(entry['proxy-url'])) {
    throw new ConfigError(options.field, `cluster "${name}": proxy-url is not supported`);
  }
  const ca = fileOrData(entry, 'certificate-authority', 'certificate-authority-data', options);
  return {
    name,
    server: server.replace(/\/+$/, ''),
    skipTLSVerify,
    tlsServerName: str(entry['tls-server-name']),
    caFile: ca.file,
    caData: ca.data,
  };
}

function parseExec(name: string, exec: Record<string, unknown>, options: LoadOptions): ExecConfig {
  if (options.baseDir === undefined) {
    throw new ConfigError(options.field, `user "${name}": exec credential plugins are not allowed here`);
  }
  const command = str(exec.command);
  if (!command) throw new ConfigError(options.field, `user "${name}": exec has no command`);
  const env = Array.isArray(exec.env) ? (exec.env as { name?: string; value?: string }[]) : [];
  return {
    apiVersion: str(exec.apiVersion) ?? 'client.authentication.k8s.io/v1',
    // A relative command with a slash is relative to the kubeconfig, as kubectl resolves it.
    command: command.includes('/') && !isAbsolute(command) ? resolve(options.baseDir, command) : command,
    args: Array.isArray(exec.args) ? exec.args.map(String) : [],
    env: Object.fromEntries(env.filter((e) => e.name).map((e) => [e.name as string, e.value ?? ''])),
    provideClusterInfo: exec.provideClusterInfo === true,
  };
}

function parseUser(name: string, entry: Record<string, unknown>, options: LoadOptions): KubeUser {
  if (entry['auth-provider']) {
    throw new ConfigError(
      options.field,
      `user "${name}": auth-provider is not supported; use an exec credential plugin`,
    );
  }
  const cert = fileOrData(entry, 'client-certificate', 'client-certificate-data', options);
  const key = fileOrData(entry, 'client-key', 'client-key-data', options);
  const tokenFile = str(entry.tokenFile);
  if (tokenFile && options.baseDir === undefined) {
    throw new ConfigError(options.field, `user "${name}": tokenFile refers to a file; embed token instead`);
  }
  const exec = entry.exec as Record<string, unknown> | undefined;
  return {
    name,
    certFile: cert.file,
    certData: cert.data,
    keyFile: key.file,
    keyData: key.data,
    token: str(entry.token),
    tokenFile: tokenFile && options.baseDir ? resolve(options.baseDir, tokenFile) : undefined,
    username: str(entry.username),
    password: str(entry.password),
    exec: exec ? parseExec(name, exec, options) : undefined,
  };
}

function named<T>(list: Named<T>[] | undefined, name: string | undefined, kind: 'cluster' | 'user'): T {
  const found = (list ?? []).find((entry) => entry.name === name);
  return (found?.[kind] ?? {}) as T;
}

/** A KubeConfig from kubeconfig text: its current context (or its only context), cluster and user. */
export function parseKubeConfig(content: string, options: LoadOptions): KubeConfig {
  let raw: RawKubeConfig;
  try {
    raw = (parseYaml(content) ?? {}) as RawKubeConfig;
  } catch (cause) {
    throw new ConfigError(options.field, `cannot parse kubeconfig: ${(cause as Error).message}`);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(options.field, 'cannot parse kubeconfig: not a mapping');
  }
  const contexts = raw.contexts ?? [];
  // Other contexts are resolved (and checked) only when chosen, as kubectl --context does.
  const resolve = (name: string | undefined): KubeContext => {
    const context = contexts.find((c) => c.name === name)?.context;
    // A kubeconfig without contexts but with a single cluster is used as that cluster (as client-node does).
    const clusterName = context?.cluster ?? (raw.clusters?.length === 1 ? raw.clusters[0]?.name : undefined);
    if (!clusterName || !raw.clusters?.some((c) => c.name === clusterName)) {
      throw new ConfigError(options.field, 'kubeconfig has no current context or cluster');
    }
    const cluster = parseCluster(clusterName, named(raw.clusters, clusterName, 'cluster'), options);
    const userName = context?.user ?? '';
    return {
      name: name ?? clusterName,
      cluster,
      user: parseUser(userName, named(raw.users, userName, 'user'), options),
    };
  };
  const current = raw['current-context'] || (contexts.length === 1 ? contexts[0]?.name : undefined);
  const contextNames = contexts.map((c) => c.name).filter((n): n is string => Boolean(n));
  return new KubeConfig(resolve(current), content, { names: contextNames, resolve });
}

export function kubeConfigFromFile(path: string, field: string): KubeConfig {
  if (!existsSync(path)) throw new ConfigError(field, `file not found: ${path}`);
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(field, `cannot read kubeconfig ${path}: ${(cause as Error).message}`);
  }
  return parseKubeConfig(content, { baseDir: dirname(path), field });
}

/** From a kubeconfig held in a Secret: credentials must be embedded (no file paths, no exec plugins). */
export function kubeConfigFromString(content: string, field: string): KubeConfig {
  return parseKubeConfig(content, { baseDir: undefined, field });
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
  const ca = join(dir, 'ca.crt');
  return new KubeConfig(
    {
      name: 'in-cluster',
      cluster: {
        name: 'in-cluster',
        server: `https://${isIPv6(host) ? `[${host}]` : host}:${port ?? 443}`,
        skipTLSVerify: false,
        caFile: existsSync(ca) ? ca : undefined,
      },
      // The projected token rotates: it is read again (at most once a minute), never cached for good.
      user: { name: 'in-cluster', tokenFile: join(dir, 'token') },
    },
    '',
  );
}

/** The namespace of the pod Spillway runs in, when it runs in a cluster. */
export function inClusterNamespace(): string | undefined {
  const path = join(serviceAccountDir(), 'namespace');
  return existsSync(path) ? readFileSync(path, 'utf8').trim() : undefined;
}
