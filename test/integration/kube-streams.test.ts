// Spillway's own client against a real API server, for what the kubelet API builds on: long-lived
// follows over HTTP/2 (hundreds share a few connections, more than the 256 sockets of the watch
// pool; a stream read slowly holds back only itself; a refusal is the server's Status), and TLS
// connections dialled ahead of time for upgrades (taken ready, replaced after use, closed with the
// client).
import type { Readable } from 'node:stream';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ClusterClient } from '../../src/kube/client.ts';
import { isNotFound } from '../../src/kube/errors.ts';
import { kubeConfigFromFile } from '../../src/kube/kubeconfig.ts';
import { clusters } from '../cluster/fixture.ts';
import { uniqueSuffix } from '../support/kube.ts';
import { waitFor } from '../support/wait.ts';

const FOLLOWS = 300;
const client = new ClusterClient({
  name: 'remote',
  kubeConfig: kubeConfigFromFile(clusters.remote.kubeconfig, 'test'),
  logger: pino({ level: 'silent' }),
});
const prefix = `kstreams-${uniqueSuffix()}`;

afterAll(async () => {
  await client.delete(`/api/v1/namespaces/${prefix}-a`).catch(() => {});
  client.close();
});

/** A watch of namespaces named `name`: a stream that stays open, as a followed log does. */
function watchNamespace(name: string): Promise<Readable> {
  return client.follow('/api/v1/namespaces', {
    query: { watch: true, fieldSelector: `metadata.name=${name}` },
  });
}

function received(stream: Readable): { text: string } {
  const seen = { text: '' };
  stream.on('data', (chunk: Buffer) => {
    seen.text += chunk.toString();
  });
  return seen;
}

describe('follows over HTTP/2', () => {
  it(`carries ${FOLLOWS} open follows on a few connections; one left unread keeps its bytes and holds back no other`, async () => {
    const streams = await Promise.all(Array.from({ length: FOLLOWS }, () => watchNamespace(`${prefix}-a`)));
    try {
      // Every stream answered 200 and stays open; far fewer connections than streams carry them.
      expect(streams.every((stream) => !stream.destroyed)).toBe(true);
      const { http2Follows } = await client.connectionCounts();
      expect(http2Follows).toBeGreaterThan(0);
      expect(http2Follows).toBeLessThanOrEqual(Math.ceil(FOLLOWS / 100));

      // One stream is not read at all; the others still get the event.
      const [paused, ...live] = streams as [Readable, ...Readable[]];
      paused.pause();
      const seen = live.map(received);
      await client.create('/api/v1/namespaces', { metadata: { name: `${prefix}-a` } });
      await waitFor('the event on every stream read', () =>
        seen.every((s) => s.text.includes('"ADDED"')) ? true : undefined,
      );
      // The unread stream kept its event, and hands it over once read.
      const late = received(paused);
      paused.resume();
      await waitFor('the event on the stream read late', () =>
        late.text.includes('"ADDED"') ? true : undefined,
      );
    } finally {
      for (const stream of streams) stream.destroy();
    }
  }, 120_000);

  it('answers a refusal with the server’s status', async () => {
    const error = await client
      .follow(`/api/v1/namespaces/${prefix}-none/pods/none/log`, { query: { follow: true } })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(isNotFound(error)).toBe(true);
  });
});

describe('connections for upgrades', () => {
  it('hands out a connected TLS socket, and once it is closed a spare for the next one', async () => {
    const first = await client.upgradeSocket();
    expect(first.encrypted && !first.connecting && !first.destroyed).toBe(true);
    first.destroy();
    await waitFor('a spare dialled', async () =>
      (await client.connectionCounts()).spareUpgrades > 0 ? true : undefined,
    );
    const second = await client.upgradeSocket();
    expect(second).not.toBe(first);
    expect(second.encrypted && !second.destroyed).toBe(true);
    // A spare is a working connection to the API server: a request on it is answered.
    second.write('GET /livez HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n');
    let answer = '';
    second.on('data', (chunk: Buffer) => {
      answer += chunk.toString();
    });
    await waitFor('the answer', () => (answer.startsWith('HTTP/1.1 ') ? true : undefined));
    second.destroy();
  });
});
