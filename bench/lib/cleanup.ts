// Putting the clusters back as they were, however long it takes. Pods on a virtual node are deleted
// the normal way (graceful, as a user deletes them) and Spillway finalises them: it is never stopped
// while host pods it must finalise or delegates it must delete remain. Progress is shown every ten
// seconds; only a cleanup that makes no progress at all for ten minutes forces what is left.
/* biome-ignore-all lint/suspicious/noConsole: a benchmark reports on the console */
import type { BenchCluster } from './api.ts';
import { countObjects, deleteIfExists, inParallel, sleep } from './api.ts';
import type { SpillwayProcess } from './spillway.ts';

const STUCK_MS = 10 * 60_000;

async function podsLeft(cluster: BenchCluster, namespaces: readonly string[]): Promise<number> {
  let total = 0;
  for (const namespace of namespaces)
    total += await countObjects(cluster.client, `/api/v1/namespaces/${namespace}/pods`);
  return total;
}

async function namespacesLeft(cluster: BenchCluster, namespaces: readonly string[]): Promise<number> {
  let left = 0;
  for (const namespace of namespaces) {
    const found = await cluster.client.get(`/api/v1/namespaces/${namespace}`).then(
      () => true,
      () => false,
    );
    if (found) left++;
  }
  return left;
}

/**
 * Polls until `left()` is 0, printing progress; returns false if it stopped moving for STUCK_MS or
 * `gaveUp()` says why waiting is pointless.
 */
async function waitUntilNone(
  what: string,
  left: () => Promise<number>,
  gaveUp: () => string | undefined = () => undefined,
): Promise<boolean> {
  let last = Number.POSITIVE_INFINITY;
  let movedAt = Date.now();
  let printedAt = 0;
  const started = Date.now();
  for (;;) {
    const count = await left().catch(() => last);
    if (count === 0) return true;
    const reason = gaveUp();
    if (reason) {
      console.log(`  cleanup: ${count} ${what} left, ${reason}`);
      return false;
    }
    if (count < last) movedAt = Date.now();
    last = count;
    if (Date.now() - printedAt >= 10_000) {
      printedAt = Date.now();
      console.log(`  cleanup: ${count} ${what} left (${Math.round((Date.now() - started) / 1000)} s)`);
    }
    if (Date.now() - movedAt > STUCK_MS) return false;
    await sleep(1000);
  }
}

/** Forces pods away (grace 0): only for pods nobody can finalise (no Spillway, or a stuck one). */
export async function forcePods(cluster: BenchCluster, namespaces: readonly string[]): Promise<void> {
  for (const namespace of namespaces) {
    await cluster.client
      .request('DELETE', `/api/v1/namespaces/${namespace}/pods`, {
        body: { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0 },
        attempts: 10,
        timeoutMs: 300_000,
      })
      .catch(() => {});
  }
}

async function deletePodsGracefully(cluster: BenchCluster, namespace: string): Promise<void> {
  const pods: PodRef[] = [];
  let token: string | undefined;
  do {
    const page = await cluster.client.get<{ items: PodRef[]; metadata: { continue?: string } }>(
      `/api/v1/namespaces/${namespace}/pods`,
      { query: { limit: 1000, continue: token }, attempts: 10 },
    );
    pods.push(...page.items.filter((p) => !p.metadata.deletionTimestamp));
    token = page.metadata.continue || undefined;
  } while (token);
  await inParallel(pods, 16, (pod) =>
    cluster.client
      .delete(
        `/api/v1/namespaces/${namespace}/pods/${pod.metadata.name}`,
        { preconditions: { uid: pod.metadata.uid } },
        { attempts: 10 },
      )
      .catch(() => {}),
  );
}

interface PodRef {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
}

/**
 * The host namespaces go (their pods deleted gracefully, finalised by Spillway, which deletes the
 * delegates), then the remote namespaces Spillway created; then Spillway is stopped.
 */
export async function cleanupWithSpillway(
  host: BenchCluster,
  remote: BenchCluster,
  namespaces: readonly string[],
  spillway: SpillwayProcess,
): Promise<void> {
  // Each pod is deleted as a user deletes it (its own grace, UID precondition), 16 at a time, before
  // its namespace: the namespace controller marks them one after another (one DeleteCollection
  // worker), which at 10,000 pods left thousands unmarked for minutes while Spillway waited for them.
  for (const namespace of namespaces) await deletePodsGracefully(host, namespace);
  for (const namespace of namespaces) await deleteIfExists(host.client, `/api/v1/namespaces/${namespace}`);
  const finalised = await waitUntilNone(
    'host pods (Spillway finalises them)',
    () => podsLeft(host, namespaces),
    () => (spillway.running ? undefined : `and Spillway exited (see ${spillway.logFile})`),
  );
  if (!finalised) {
    console.log(
      '  cleanup: Spillway did not finalise every host pod; forcing the rest (its delegates become orphans it collects)',
    );
    await forcePods(host, namespaces);
  }
  const collected = await waitUntilNone(
    'delegates (Spillway deletes them)',
    () => podsLeft(remote, namespaces),
    () => (spillway.running ? undefined : 'and Spillway exited'),
  );
  if (!collected) console.log('  cleanup: delegates are left in the remote; forcing them');
  await cleanupWithoutSpillway(host, remote, namespaces);
  await spillway.stop();
}

/** Without a provider to finalise anything (the floor, an aborted run): pods are forced away. */
export async function cleanupWithoutSpillway(
  host: BenchCluster,
  remote: BenchCluster,
  namespaces: readonly string[],
): Promise<void> {
  for (const cluster of [host, remote]) {
    await forcePods(cluster, namespaces);
    for (const namespace of namespaces)
      await deleteIfExists(cluster.client, `/api/v1/namespaces/${namespace}`);
  }
  for (const cluster of [host, remote]) {
    await waitUntilNone(`namespaces in ${cluster.name}`, () => namespacesLeft(cluster, namespaces));
  }
}
