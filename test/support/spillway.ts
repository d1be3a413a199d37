// Runs Spillway in the test process against the shared clusters, configured through a real YAML file
// (the same path `spillway run --config` takes).
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { Spillway } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { freePort } from '../cluster/ports.ts';

export interface TestRemote {
  readonly name: string;
  readonly kubeconfig?: string;
  readonly secretRef?: { namespace?: string; name: string; key?: string };
  readonly nodeName?: string;
  readonly labels?: Record<string, string>;
  readonly taints?: unknown[];
  readonly share?: unknown;
  readonly burstWeight?: number;
  readonly remove?: 'drain' | 'force';
}

export interface TestSpillwayOptions {
  readonly hostKubeconfig: string;
  readonly hostClusterName?: string;
  readonly remotes: readonly TestRemote[];
  readonly node?: Record<string, unknown>;
  readonly namespace?: string;
  readonly discovery?: boolean;
  readonly extra?: Record<string, unknown>;
  readonly kubeletPort?: number;
  readonly kubelet?: Record<string, unknown>;
}

export async function writeConfig(options: TestSpillwayOptions): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-config-'));
  const file = join(dir, 'spillway.yaml');
  await writeFile(
    file,
    stringify({
      hostClusterName: options.hostClusterName ?? 'host',
      ...(options.namespace ? { namespace: options.namespace } : {}),
      host: { kubeconfig: options.hostKubeconfig },
      // Each instance serves its own kubelet API: a free port, advertised by its virtual nodes.
      kubelet: { address: '127.0.0.1', port: options.kubeletPort ?? (await freePort()), ...options.kubelet },
      node: { probeIntervalSeconds: 1, remoteUnreachableGraceSeconds: 5, ...options.node },
      discovery: { enabled: options.discovery ?? false },
      // Several instances run at once: each serves its own metrics endpoint.
      metrics: { port: await freePort() },
      remotes: options.remotes,
      logLevel: process.env.SPILLWAY_TEST_LOG_LEVEL ?? 'warn',
      ...options.extra,
    }),
  );
  return file;
}

/** Starts Spillway in this process; with `logs`, every log line (at info and above) is also kept there. */
export async function startSpillway(options: TestSpillwayOptions, logs?: string[]): Promise<Spillway> {
  const config = loadConfig(await writeConfig(options), {}, {});
  const logger = logs
    ? pino({ level: 'info' }, { write: (line: string) => void logs.push(line) })
    : pino({ level: config.logLevel });
  const spillway = new Spillway(config, logger);
  await spillway.start();
  return spillway;
}
