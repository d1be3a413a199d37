import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { ClusterClient } from '../../src/kube/client.ts';
import { ApiError } from '../../src/kube/errors.ts';
import { EventRecorder } from '../../src/kube/events.ts';

const terminating = (namespace: string) =>
  new ApiError(
    403,
    'POST events',
    JSON.stringify({
      kind: 'Status',
      reason: 'Forbidden',
      code: 403,
      message: `unable to create new content in namespace ${namespace} because it is being terminated`,
      details: { causes: [{ reason: 'NamespaceTerminating' }] },
    }),
  );

/** A client whose creates in namespace "going" are refused as the API server refuses them. */
function stubClient() {
  const creates: string[] = [];
  const client = {
    create: async (path: string) => {
      creates.push(path);
      if (path.includes('/namespaces/going/')) throw terminating('going');
      return {};
    },
    patch: async () => ({}),
  } as unknown as ClusterClient;
  return { client, creates };
}

describe('the event recorder', () => {
  it('stops writing into a namespace the API server says is being deleted, and keeps writing elsewhere', async () => {
    const { client, creates } = stubClient();
    const recorder = new EventRecorder({ client, component: 'spillway', logger: pino({ level: 'silent' }) });
    for (let i = 0; i < 5; i++) {
      await recorder.record({ kind: 'Pod', name: `p-${i}`, namespace: 'going' }, 'Normal', 'Waiting', 'm');
      await recorder.record({ kind: 'Pod', name: `p-${i}`, namespace: 'staying' }, 'Normal', 'Waiting', 'm');
    }
    expect(creates.filter((p) => p.includes('/going/'))).toHaveLength(1);
    expect(creates.filter((p) => p.includes('/staying/'))).toHaveLength(5);
    expect(recorder.skipped).toBe(4);
  });
});
