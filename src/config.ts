// Spillway's configuration: a YAML file, overridden by environment variables, overridden by flags.
// Validated once at start; every problem names the field it comes from.
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, inClusterNamespace } from './kube/kubeconfig.ts';
import { parseQuantity } from './kube/quantity.ts';

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const dnsSubdomain = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

const quantity = z.union([z.string(), z.number()]).refine(
  (value) => {
    try {
      parseQuantity(value);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a valid Kubernetes quantity (e.g. 4, 500m, 16Gi)' },
);

const regex = z.string().refine(
  (value) => {
    try {
      new RegExp(value);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a valid regular expression' },
);

export const DEFAULT_TAINT = {
  key: 'virtual-kubelet.io/provider',
  value: 'spillway',
  effect: 'NoSchedule',
} as const;

/** Labels of remote nodes never copied onto the virtual node: per-node identity and deprecated aliases. */
export const DEFAULT_EXCLUDED_LABELS =
  '^(kubernetes\\.io/hostname|beta\\.kubernetes\\.io/.*|node\\.kubernetes\\.io/exclude-.*|node-role\\.kubernetes\\.io/.*|kwok\\.x-k8s\\.io/.*|type)$';

const taint = z.strictObject({
  key: z.string().min(1),
  value: z.string().optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']),
});

const share = z
  .strictObject({
    /** Advertise at most this percentage of the remote's schedulable allocatable. */
    percent: z.number().gt(0).max(100).optional(),
    /** Advertise at most these quantities (cpu, memory, pods, extended resources). */
    max: z.record(z.string(), quantity).optional(),
  })
  .optional();

const remote = z
  .strictObject({
    name: z.string().regex(dnsLabel, 'must be a DNS label (lowercase letters, digits, "-")'),
    kubeconfig: z.string().min(1).optional(),
    secretRef: z
      .strictObject({
        namespace: z.string().regex(dnsLabel).optional(),
        name: z.string().regex(dnsSubdomain),
        key: z.string().min(1).default('kubeconfig'),
      })
      .optional(),
    nodeName: z.string().regex(dnsSubdomain, 'must be a DNS subdomain').optional(),
    labels: z.record(z.string(), z.string().regex(labelValue, 'not a valid label value')).default({}),
    taints: z.array(taint).optional(),
    share,
    /** How much burst pods prefer this remote over other remotes (1-100; real nodes always come first). */
    burstWeight: z.number().int().min(1).max(100).optional(),
  })
  .refine((r) => Boolean(r.kubeconfig) !== Boolean(r.secretRef), {
    message: 'set exactly one of kubeconfig or secretRef',
  });

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
  kubelet: z
    .strictObject({
      address: z
        .string()
        .refine((value) => isIP(value) !== 0, 'must be an IP address the host API server can reach')
        .default('127.0.0.1'),
      port: z.number().int().min(1).max(65535).default(10250),
      /** Where the server listens (default: the advertised address). */
      bindAddress: z
        .string()
        .refine((value) => isIP(value) !== 0, 'must be an IP address')
        .optional(),
      tls: z
        .strictObject({
          /** self-signed (default), csr (issued by the host's kubelet-serving signer), or files. */
          mode: z.enum(['self-signed', 'csr', 'files']).default('self-signed'),
          certFile: z.string().optional(),
          keyFile: z.string().optional(),
          /** With mode csr: Spillway approves its own request (needs the approval permission). */
          approveCsr: z.boolean().default(true),
          csrExpirationSeconds: z.number().int().min(600).optional(),
        })
        .prefault({}),
      /** CA bundle for the API server's client certificate; default: the host's extension-apiserver-authentication. */
      clientCAFile: z.string().optional(),
      maxSessionsPerClient: z.number().int().positive().default(64),
      metrics: z
        .strictObject({
          /** auto (the remote's metrics.k8s.io when served, else its kubelets), metrics-api or kubelet. */
          source: z.enum(['auto', 'metrics-api', 'kubelet']).default('auto'),
        })
        .prefault({}),
    })
    .prefault({}),
  node: z
    .strictObject({
      taints: z.array(taint).default([DEFAULT_TAINT]),
      labels: z.record(z.string(), z.string().regex(labelValue, 'not a valid label value')).default({}),
      excludeLabels: regex.default(DEFAULT_EXCLUDED_LABELS),
      deleteOnShutdown: z.boolean().default(false),
      remoteUnreachableGraceSeconds: z.number().positive().default(30),
      probeIntervalSeconds: z.number().positive().default(5),
      leaseDurationSeconds: z.number().int().positive().default(40),
      leaseRenewIntervalSeconds: z.number().positive().default(10),
      /** Node status is written only on change, and at most this often. */
      statusMinIntervalSeconds: z.number().min(0).default(1),
    })
    .prefault({}),
  pods: z
    .strictObject({
      /** Remote namespace = prefix + host namespace. */
      namespacePrefix: z
        .string()
        .regex(
          /^([a-z0-9][-a-z0-9]*)?$/,
          'must be lowercase letters, digits and "-", starting with a letter or digit',
        )
        .max(30)
        .default(''),
      workers: z.number().int().min(1).max(256).default(16),
      /** What to do with a delegate the remote cannot schedule for longer than timeoutSeconds. */
      unschedulable: z
        .strictObject({
          timeoutSeconds: z.number().positive().default(300),
          policy: z.enum(['wait', 'fail']).default('wait'),
        })
        .prefault({}),
      /** A new delegate's Pending status waits this long, so a quick start costs one host write. */
      statusSettleMilliseconds: z.number().int().min(0).max(10_000).default(1000),
      /** Every pod is reconciled again this often, and orphans are collected, even without events. */
      resyncSeconds: z.number().positive().default(300),
      /** DaemonSet pods on a virtual node: refused (Failed, DaemonSetPodRefused) unless allowed. */
      daemonSets: z.enum(['refuse', 'allow']).default('refuse'),
      /** controller.kubernetes.io/pod-deletion-cost on mirrored pods, so scale-down removes them first; null: leave it. */
      deletionCost: z.number().int().min(-2147483648).max(2147483647).nullable().default(-100),
    })
    .prefault({}),
  remotes: z.array(remote).default([]),
  /** The mutating admission webhook that turns opted-in pods into burst pods (see README). */
  webhook: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** Where it listens (default: kubelet.bindAddress or kubelet.address). */
      bindAddress: z
        .string()
        .refine((value) => isIP(value) !== 0, 'must be an IP address')
        .optional(),
      port: z.number().int().min(1).max(65535).default(9443),
      /** How the host API server reaches it: a URL (default https://<kubelet.address>:<port>/mutate-pods) or a Service. */
      url: z.url({ protocol: /^https$/ }).optional(),
      service: z
        .strictObject({
          namespace: z.string().regex(dnsLabel),
          name: z.string().regex(dnsLabel),
          port: z.number().int().min(1).max(65535).default(443),
        })
        .optional(),
      /** Create or update the MutatingWebhookConfiguration at start. */
      install: z.boolean().default(true),
      timeoutSeconds: z.number().int().min(1).max(30).default(5),
      /** Burst pods leave a not-ready or unreachable node after this long (the default is 300 s). */
      notReadyTolerationSeconds: z.number().int().min(0).default(60),
      /** How strongly burst pods prefer real nodes over virtual ones (1-100). */
      preferLocalWeight: z.number().int().min(1).max(100).default(100),
    })
    .refine((w) => !(w.url && w.service), { message: 'set at most one of url or service' })
    .prefault({}),
  discovery: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
  remoteQps: z.number().positive().default(100),
  remoteBurst: z.number().int().positive().default(200),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = z.infer<typeof schema> & { readonly configDir: string; readonly namespace: string };
export type RemoteConfig = z.infer<typeof remote>;
export type TaintConfig = z.infer<typeof taint>;
export type ShareConfig = NonNullable<z.infer<typeof share>>;
export type PodsConfig = z.infer<typeof schema>['pods'];
export type WebhookConfig = z.infer<typeof schema>['webhook'];

/** Values given on the command line, which win over the environment and the file. */
export interface ConfigOverrides {
  readonly hostKubeconfig?: string;
  readonly hostClusterName?: string;
  readonly kubeletAddress?: string;
  readonly kubeletPort?: string;
  readonly namespace?: string;
  readonly logLevel?: string;
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
  ];
  for (const [path, fromEnv, fromFlag] of layers) {
    const value = fromFlag ?? fromEnv;
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
  return { ...config, configDir, namespace: config.namespace ?? inClusterNamespace() ?? 'spillway-system' };
}

export function nodeNameOf(remoteConfig: Pick<RemoteConfig, 'name' | 'nodeName'>): string {
  return remoteConfig.nodeName ?? `spillway-${remoteConfig.name}`;
}
