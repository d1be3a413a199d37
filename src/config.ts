// Spillway's configuration: a YAML file, overridden by environment variables, overridden by flags.
// Validated once at start; every problem names the field it comes from. Each section's schema lives in
// src/config/<section>.ts; this file assembles them and loads the layers.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { dnsLabel, labelValue, type taint } from './config/fields.ts';
import { haSection } from './config/ha.ts';
import { kubeletSection } from './config/kubelet.ts';
import { metricsSection } from './config/metrics.ts';
import { nodeSection } from './config/node.ts';
import { podsSection } from './config/pods.ts';
import { remote, type share } from './config/remotes.ts';
import { webhookSection } from './config/webhook.ts';
import { ConfigError, IN_CLUSTER_TOKEN_PATH, inClusterNamespace } from './kube/kubeconfig.ts';

export { DEFAULT_EXCLUDED_LABELS, DEFAULT_TAINT } from './config/node.ts';

const schema = z.strictObject({
  hostClusterName: z.string().min(1).max(63).regex(labelValue, 'must be a valid label value').default('host'),
  /** Spillway's namespace in the host cluster: where remote-cluster Secrets are discovered. */
  namespace: z.string().regex(dnsLabel).optional(),
  host: z
    .strictObject({
      kubeconfig: z.string().min(1).optional(),
      qps: z.number().positive().default(100),
      burst: z.number().int().positive().default(200),
    })
    .prefault({}),
  kubelet: kubeletSection,
  node: nodeSection,
  pods: podsSection,
  remotes: z.array(remote).default([]),
  webhook: webhookSection,
  ha: haSection,
  metrics: metricsSection,
  discovery: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
  remoteQps: z.number().positive().default(100),
  remoteBurst: z.number().int().positive().default(200),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

type Parsed = z.infer<typeof schema>;

export type Config = Omit<Parsed, 'ha' | 'metrics'> & {
  readonly configDir: string;
  readonly namespace: string;
  /** identity: this process's unique name in the Leases (configured name or host name, plus a random suffix). */
  readonly ha: Parsed['ha'] & { readonly identity: string };
  readonly metrics: Parsed['metrics'] & { readonly bindAddress: string };
};
export type RemoteConfig = z.infer<typeof remote>;
export type TaintConfig = z.infer<typeof taint>;
export type ShareConfig = NonNullable<z.infer<typeof share>>;
export type PodsConfig = z.infer<typeof schema>['pods'];
export type WebhookConfig = z.infer<typeof schema>['webhook'];
export type HaConfig = Config['ha'];

/** Values given on the command line, which win over the environment and the file. */
export interface ConfigOverrides {
  readonly hostKubeconfig?: string;
  readonly hostClusterName?: string;
  readonly kubeletAddress?: string;
  readonly kubeletPort?: string;
  readonly namespace?: string;
  readonly logLevel?: string;
  readonly metricsPort?: string;
  readonly webhookPort?: string;
  readonly haIdentity?: string;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (text, segment) =>
      typeof segment === 'number'
        ? `${text}[${segment}]`
        : text
          ? `${text}.${String(segment)}`
          : String(segment),
    '',
  );
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .flatMap((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((key) => `${formatPath([...issue.path, key])}: unknown field`);
      }
      return [`${formatPath(issue.path) || '(root)'}: ${issue.message}`];
    })
    .join('\n  ');
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let current = target;
  for (const segment of path.slice(0, -1)) {
    if (typeof current[segment] !== 'object' || current[segment] === null) current[segment] = {};
    current = current[segment] as Record<string, unknown>;
  }
  current[path.at(-1) as string] = value;
}

/** Loads and validates the configuration. Throws a ConfigError that lists every problem by field. */
export function loadConfig(
  file: string | undefined,
  overrides: ConfigOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
): Config {
  let raw: Record<string, unknown> = {};
  const configDir = file ? dirname(resolve(file)) : process.cwd();
  if (file) {
    if (!existsSync(file)) throw new ConfigError('--config', `file not found: ${file}`);
    try {
      raw = (parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown>) ?? {};
    } catch (cause) {
      throw new ConfigError('--config', `${file} is not valid YAML: ${(cause as Error).message}`);
    }
    if (typeof raw !== 'object' || Array.isArray(raw))
      throw new ConfigError('--config', `${file} must hold a mapping`);
  }
  const layers: [string[], string | undefined, string | undefined][] = [
    [['host', 'kubeconfig'], env.SPILLWAY_HOST_KUBECONFIG, overrides.hostKubeconfig],
    [['hostClusterName'], env.SPILLWAY_HOST_CLUSTER_NAME, overrides.hostClusterName],
    [['kubelet', 'address'], env.SPILLWAY_KUBELET_ADDRESS, overrides.kubeletAddress],
    [['kubelet', 'port'], env.SPILLWAY_KUBELET_PORT, overrides.kubeletPort],
    [['namespace'], env.SPILLWAY_NAMESPACE, overrides.namespace],
    [['logLevel'], env.SPILLWAY_LOG_LEVEL, overrides.logLevel],
    [['metrics', 'port'], env.SPILLWAY_METRICS_PORT, overrides.metricsPort],
    [['webhook', 'port'], env.SPILLWAY_WEBHOOK_PORT, overrides.webhookPort],
    [['ha', 'identity'], env.SPILLWAY_HA_IDENTITY, overrides.haIdentity],
  ];
  for (const [path, fromEnv, fromFlag] of layers) {
    // An empty variable (SPILLWAY_X= in a pod spec) sets nothing.
    const value = fromFlag ?? (fromEnv === '' ? undefined : fromEnv);
    if (value === undefined) continue;
    setPath(raw, path, path.at(-1) === 'port' && /^\d+$/.test(value) ? Number(value) : value);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      file ?? 'configuration',
      `invalid configuration:\n  ${describeIssues(parsed.error)}`,
    );
  }
  const config = parsed.data;
  const names = new Set<string>();
  const nodeNames = new Set<string>();
  config.remotes.forEach((r, i) => {
    if (names.has(r.name)) throw new ConfigError(`remotes[${i}].name`, `duplicate remote name "${r.name}"`);
    names.add(r.name);
    const nodeName = r.nodeName ?? `spillway-${r.name}`;
    if (nodeNames.has(nodeName))
      throw new ConfigError(`remotes[${i}].nodeName`, `duplicate node name "${nodeName}"`);
    nodeNames.add(nodeName);
    if (r.kubeconfig) r.kubeconfig = resolve(configDir, r.kubeconfig);
  });
  if (config.host.kubeconfig) config.host.kubeconfig = resolve(configDir, config.host.kubeconfig);
  const tls = config.kubelet.tls;
  if (tls.mode === 'files' && !(tls.certFile && tls.keyFile)) {
    throw new ConfigError('kubelet.tls', 'mode "files" needs certFile and keyFile');
  }
  for (const field of ['certFile', 'keyFile'] as const) {
    const path = tls[field];
    if (path) {
      tls[field] = resolve(configDir, path);
      if (!existsSync(tls[field] as string))
        throw new ConfigError(`kubelet.tls.${field}`, `file not found: ${path}`);
    }
  }
  if (config.kubelet.clientCAFile) {
    config.kubelet.clientCAFile = resolve(configDir, config.kubelet.clientCAFile);
    if (!existsSync(config.kubelet.clientCAFile)) {
      throw new ConfigError('kubelet.clientCAFile', `file not found: ${config.kubelet.clientCAFile}`);
    }
  }
  return {
    ...config,
    configDir,
    namespace: config.namespace ?? inClusterNamespace() ?? 'spillway-system',
    ha: { ...config.ha, identity: `${config.ha.identity ?? hostname()}_${randomBytes(3).toString('hex')}` },
    metrics: {
      ...config.metrics,
      // Inside a pod, Prometheus scrapes the pod's address; anywhere else, only this machine may.
      bindAddress: config.metrics.bindAddress ?? (inPod(env) ? '0.0.0.0' : '127.0.0.1'),
    },
  };
}

/** Running in a Kubernetes pod: the service environment and the mounted service-account token. */
function inPod(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.KUBERNETES_SERVICE_HOST) && existsSync(IN_CLUSTER_TOKEN_PATH);
}

export function nodeNameOf(remoteConfig: Pick<RemoteConfig, 'name' | 'nodeName'>): string {
  return remoteConfig.nodeName ?? `spillway-${remoteConfig.name}`;
}
