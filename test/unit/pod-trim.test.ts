import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { delegatePod, delegateReferences, delegateUpdate, type ForgeContext } from '../../src/pods/forge.ts';
import { ephemeralToAdd, resizeOf } from '../../src/pods/live.ts';
import { hostStatusFromDelegate } from '../../src/pods/status.ts';
import { trimDelegate, trimHostPod } from '../../src/pods/trim.ts';

const context: ForgeContext = {
  hostClusterName: 'east',
  nodeName: 'spillway-west',
  namespacePrefix: '',
  virtualOnlyLabelKeys: new Set(['type']),
  virtualTaintKeys: new Set(['virtual-kubelet.io/provider']),
  priorityClassExists: () => false,
};

const tokenVolume = {
  name: 'kube-api-access-abcde',
  projected: {
    defaultMode: 420,
    sources: [
      { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
      { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      {
        downwardAPI: {
          items: [{ fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' }, path: 'namespace' }],
        },
      },
    ],
  },
};

const host: V1Pod = {
  metadata: {
    name: 'web-1',
    namespace: 'shop',
    uid: 'uid-1',
    resourceVersion: '42',
    labels: { app: 'web' },
    annotations: { note: 'kept' },
    managedFields: [{ manager: 'kubectl', operation: 'Update', fieldsV1: { 'f:spec': {} } }],
  },
  spec: {
    nodeName: 'spillway-west',
    serviceAccountName: 'default',
    tolerations: [{ key: 'virtual-kubelet.io/provider', operator: 'Exists' }],
    containers: [
      {
        name: 'main',
        image: 'nginx:1',
        env: [{ name: 'A', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'a' } } }],
        volumeMounts: [
          {
            name: 'kube-api-access-abcde',
            mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
            readOnly: true,
          },
          { name: 'data', mountPath: '/data' },
        ],
      },
    ],
    initContainers: [
      { name: 'init', image: 'busybox', volumeMounts: [{ name: 'kube-api-access-abcde', mountPath: '/sa' }] },
    ],
    volumes: [tokenVolume, { name: 'data', secret: { secretName: 'db' } }],
  },
  status: {
    phase: 'Pending',
    qosClass: 'BestEffort',
    conditions: [{ type: 'PodScheduled', status: 'True' }],
  },
};

const delegate: V1Pod = {
  metadata: {
    ...delegatePod(host, context).metadata,
    uid: 'remote-uid',
    resourceVersion: '7',
    creationTimestamp: new Date('2026-01-01T00:00:00Z'),
    managedFields: [{ manager: 'spillway', operation: 'Update' }],
    labels: { ...delegatePod(host, context).metadata?.labels, 'topology.kubernetes.io/zone': 'a' },
  },
  spec: {
    ...delegatePod(host, context).spec,
    nodeName: 'remote-node-3',
    schedulerName: 'default-scheduler',
    tolerations: [
      {
        key: 'node.kubernetes.io/not-ready',
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 300,
      },
    ],
    containers: [
      {
        name: 'main',
        image: 'nginx:1',
        imagePullPolicy: 'Always',
        terminationMessagePath: '/dev/termination-log',
        resources: {},
      },
    ],
  } as V1Pod['spec'],
  status: {
    phase: 'Running',
    hostIP: '10.0.0.3',
    hostIPs: [{ ip: '10.0.0.3' }],
    podIP: '10.1.2.3',
    podIPs: [{ ip: '10.1.2.3' }],
    qosClass: 'BestEffort',
    startTime: new Date('2026-01-01T00:00:01Z'),
    conditions: [
      { type: 'Ready', status: 'True' },
      { type: 'ContainersReady', status: 'True' },
      { type: 'Initialized', status: 'True' },
      { type: 'PodScheduled', status: 'True' },
    ],
    containerStatuses: [
      {
        name: 'main',
        image: 'nginx:1',
        imageID: 'sha',
        ready: true,
        restartCount: 0,
        started: true,
        state: { running: { startedAt: new Date('2026-01-01T00:00:02Z') } },
      },
    ],
  },
};

describe('what the pod caches keep', () => {
  it('host pods: forge, references and status come out the same as from the full pod', () => {
    const trimmed = trimHostPod(host);
    expect(trimmed.metadata?.managedFields).toBeUndefined();
    // The token volume stays: a delegate with the host's API gets tokens at its paths.
    expect(trimmed.spec?.volumes?.map((v) => v.name)).toEqual([tokenVolume.name, 'data']);
    expect(delegatePod(trimmed, context)).toEqual(delegatePod(host, context));
    expect(delegateReferences(trimmed.spec)).toEqual(delegateReferences(host.spec));
    const verdict = { status: 'True' as const, reason: 'DelegateCreated', message: 'ok' };
    const now = { hostIP: '127.0.0.1', now: '2026-01-01T00:00:05Z' };
    expect(hostStatusFromDelegate(trimmed, delegate, verdict, now)).toEqual(
      hostStatusFromDelegate(host, delegate, verdict, now),
    );
  });

  it('delegates: the update, the mirrored status and the kubelet API fields come out the same', () => {
    const trimmed = trimDelegate(delegate);
    const changedHost: V1Pod = {
      ...host,
      metadata: { ...host.metadata, labels: { app: 'web', tier: 'new' } },
      spec: {
        ...(host.spec as V1Pod['spec'] & object),
        containers: [{ name: 'main', image: 'nginx:2' }],
        activeDeadlineSeconds: 60,
      },
    };
    for (const wanted of [host, changedHost]) {
      expect(delegateUpdate(delegatePod(wanted, context), trimmed)).toEqual(
        delegateUpdate(delegatePod(wanted, context), delegate),
      );
    }
    const verdict = { status: 'True' as const, reason: 'DelegateCreated', message: 'ok' };
    const now = { hostIP: '127.0.0.1', now: '2026-01-01T00:00:05Z' };
    expect(hostStatusFromDelegate(host, trimmed, verdict, now)).toEqual(
      hostStatusFromDelegate(host, delegate, verdict, now),
    );
    expect(trimmed.spec?.nodeName).toBe('remote-node-3');
    expect(trimmed.spec?.containers).toEqual([{ name: 'main', image: 'nginx:1' }]);
    expect(trimmed.metadata?.uid).toBe('remote-uid');
    // kubectl debug and resize compare the same: ephemeral container names, container resources.
    const debugged: V1Pod = {
      ...host,
      spec: {
        ...(host.spec as V1Pod['spec'] & object),
        containers: [{ name: 'main', image: 'nginx:1', resources: { requests: { cpu: '2' } } }],
        ephemeralContainers: [{ name: 'debugger', image: 'busybox' }],
      },
    };
    const wanted = delegatePod(debugged, context);
    expect(ephemeralToAdd(wanted, trimmed)).toEqual(ephemeralToAdd(wanted, delegate));
    expect(resizeOf(wanted, trimmed)).toEqual(resizeOf(wanted, delegate));
    expect(JSON.stringify(trimmed).length).toBeLessThan(JSON.stringify(delegate).length * 0.8);
  });
});
