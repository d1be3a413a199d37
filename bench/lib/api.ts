// The benchmark's own API access: Spillway's ClusterClient (rate limiter out of the way, retries on
// throttling, 5xx and network failures with backoff, as a real client retries), under its own user
// agent, plus the few helpers every scenario needs.
import { pino } from 'pino';
import { ClusterClient } from '../../src/kube/client.ts';
import { isAlreadyExists, isNotFound, isRetriable, messageOf } from '../../src/kube/errors.ts';
import { kubeConfigFromFile } from '../../src/kube/kubeconfig.ts';

export const benchLogger = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'warn' });

export interface BenchCluster {
  readonly name: string;
  readonly kubeconfig: string;
  readonly client: ClusterClient;
}

export function benchCluster(name: string, kubeconfig: string, userAgent = 'spillway-bench'): BenchCluster {
  const kubeConfig = kubeConfigFromFile(kubeconfig, `${name} kubeconfig`);
  const client = new ClusterClient({
    name,
    kubeConfig,
    logger: benchLogger,
    qps: 100_000,
    burst: 256,
    userAgent: `${userAgent} (${name})`,
  });
  return { name, kubeconfig, client };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `work` over the items, at most `concurrency` at a time. */
export async function inParallel<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

/** Creates an object; one that exists already (a retried create that had gone through) is fine. */
export async function createOrKeep(client: ClusterClient, path: string, body: unknown): Promise<void> {
  try {
    await client.create(path, body, { attempts: 10 });
  } catch (error) {
    if (!isAlreadyExists(error)) throw error;
  }
}

/** Creates or replaces a cluster-scoped or namespaced object by its collection path and name. */
export async function apply(client: ClusterClient, collection: string, body: { metadata: { name: string } }) {
  try {
    const existing = await client.get<{ metadata: { resourceVersion: string } }>(
      `${collection}/${body.metadata.name}`,
    );
    await client.replace(`${collection}/${body.metadata.name}`, {
      ...body,
      metadata: { ...body.metadata, resourceVersion: existing.metadata.resourceVersion },
    });
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await createOrKeep(client, collection, body);
  }
}

export async function deleteIfExists(client: ClusterClient, path: string, gracePeriodSeconds?: number) {
  try {
    await client.delete(path, gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds }, {
      attempts: 10,
    });
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

/** How many objects a collection holds, from one item and the server's remainingItemCount. */
export async function countObjects(
  client: ClusterClient,
  path: string,
  query: Record<string, string> = {},
): Promise<number> {
  const page = await client.get<{ items?: unknown[]; metadata?: { remainingItemCount?: number } }>(path, {
    query: { ...query, limit: 1 },
    attempts: 10,
  });
  return (page.items?.length ?? 0) + (page.metadata?.remainingItemCount ?? 0);
}

/** Retries a whole step on transient failures (beyond the client's own retries), saying so. */
export async function persist<T>(what: string, step: () => Promise<T>, attempts = 20): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (attempt >= attempts || !isRetriable(error)) throw error;
      benchLogger.warn({ what, attempt, err: messageOf(error) }, 'transient failure; retrying');
      await sleep(Math.min(10_000, 500 * attempt));
    }
  }
}

export const namespaceOf = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
