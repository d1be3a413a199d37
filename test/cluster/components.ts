// Command lines of one local cluster's processes. Every address is 127.0.0.1: nothing here may listen
// on, advertise or dial anything but loopback.
import { join } from 'node:path';
import type { Binaries } from './binaries.ts';
import { type ClusterPki, SERVICE_CLUSTER_IP_RANGE } from './cluster-pki.ts';

export interface ClusterPorts {
  readonly etcdClient: number;
  readonly etcdPeer: number;
  readonly apiserver: number;
  /** kwok's fake kubelet server: logs, exec, attach, port-forward and metrics for the simulated nodes. */
  readonly kwok: number;
  /** metrics-server's secure port (host clusters); absent in clusters created before it existed. */
  readonly metricsServer?: number;
}

export interface ComponentSpec {
  readonly name: ComponentName;
  readonly binary: string;
  readonly args: readonly string[];
}

export type ComponentName =
  | 'etcd'
  | 'kube-apiserver'
  | 'kube-controller-manager'
  | 'kube-scheduler'
  | 'kwok'
  | 'metrics-server';

export interface ComponentOptions {
  readonly clusterName: string;
  readonly dir: string;
  readonly ports: ClusterPorts;
  readonly pki: ClusterPki;
  readonly binaries: Binaries;
  readonly kubeconfig: string;
  /** Verify kubelet serving certificates against the cluster CA (what hardened clusters do). */
  readonly verifyKubeletCertificates: boolean;
  /** Pod IPs kwok hands out: a virtual range that is recorded, never dialled. */
  readonly podCidr: string;
  readonly extraApiserverArgs?: readonly string[];
}

/** Simulated nodes carry this annotation; kwok manages only them, never Spillway's virtual nodes. */
export const SIMULATED_NODE_ANNOTATION = 'kwok.x-k8s.io/node';
export const SIMULATED_NODE_ANNOTATION_VALUE = 'fake';

/**
 * Simulated nodes labelled so are not scraped by metrics-server. KWOK computes each pod's usage from
 * its Metric expressions on every scrape; at 500 pods a node, 20 such nodes scraped every 10 s kept
 * KWOK so busy that its pod deletions fell to about 2 a second (and the scrapes timed out anyway).
 * The scale benchmark's nodes carry it; nothing there reads their pods' usage.
 */
export const NO_RESOURCE_METRICS_LABEL = 'test.spillway.dev/resource-metrics';

export const KWOK_CRDS = [
  'Logs',
  'ClusterLogs',
  'Exec',
  'ClusterExec',
  'Attach',
  'ClusterAttach',
  'PortForward',
  'ClusterPortForward',
  'Metric',
  'ResourceUsage',
  'ClusterResourceUsage',
];

export function componentSpecs(o: ComponentOptions): ComponentSpec[] {
  const loopback = '127.0.0.1';
  const etcdClientUrl = `http://${loopback}:${o.ports.etcdClient}`;
  const etcdPeerUrl = `http://${loopback}:${o.ports.etcdPeer}`;
  return [
    {
      name: 'etcd',
      binary: o.binaries.etcd,
      args: [
        `--name=${o.clusterName}`,
        `--data-dir=${join(o.dir, 'etcd')}`,
        `--listen-client-urls=${etcdClientUrl}`,
        `--advertise-client-urls=${etcdClientUrl}`,
        `--listen-peer-urls=${etcdPeerUrl}`,
        `--initial-advertise-peer-urls=${etcdPeerUrl}`,
        `--initial-cluster=${o.clusterName}=${etcdPeerUrl}`,
        // Test clusters trade durability for speed; a crash loses at most their own test data.
        '--unsafe-no-fsync=true',
        '--quota-backend-bytes=4294967296',
        '--log-level=warn',
      ],
    },
    {
      name: 'kube-apiserver',
      binary: o.binaries.kubeApiserver,
      args: [
        `--etcd-servers=${etcdClientUrl}`,
        `--bind-address=${loopback}`,
        `--advertise-address=${loopback}`,
        `--secure-port=${o.ports.apiserver}`,
        `--tls-cert-file=${o.pki.apiserverCert}`,
        `--tls-private-key-file=${o.pki.apiserverKey}`,
        `--client-ca-file=${o.pki.caCert}`,
        '--authorization-mode=Node,RBAC',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-signing-key-file=${o.pki.serviceAccountKey}`,
        `--service-account-key-file=${o.pki.serviceAccountPub}`,
        `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
        `--kubelet-client-certificate=${o.pki.kubeletClientCert}`,
        `--kubelet-client-key=${o.pki.kubeletClientKey}`,
        '--kubelet-preferred-address-types=InternalIP,Hostname',
        ...(o.verifyKubeletCertificates ? [`--kubelet-certificate-authority=${o.pki.caCert}`] : []),
        `--requestheader-client-ca-file=${o.pki.frontProxyCaCert}`,
        '--requestheader-allowed-names=front-proxy-client',
        '--requestheader-username-headers=X-Remote-User',
        '--requestheader-group-headers=X-Remote-Group',
        '--requestheader-extra-headers-prefix=X-Remote-Extra-',
        `--proxy-client-cert-file=${o.pki.frontProxyClientCert}`,
        `--proxy-client-key-file=${o.pki.frontProxyClientKey}`,
        // Aggregated APIs (metrics-server) are reached through an ExternalName Service naming
        // localhost: EndpointSlices refuse loopback addresses, and there is no service network here.
        '--enable-aggregator-routing=false',
        // The default reconciler would publish 127.0.0.1 as the kubernetes Service endpoint, which
        // the API rejects (loopback); nothing in these clusters dials that Service anyway.
        '--endpoint-reconciler-type=none',
        '--allow-privileged=true',
        // Deleting a namespace deletes its pods through one DeleteCollection; with the default single
        // worker the API server marks 10,000 pods for deletion one after another (about 50 a second
        // on a busy machine), longer than it takes their provider to finish them.
        '--delete-collection-workers=8',
        '--profiling=false',
        ...(o.extraApiserverArgs ?? []),
      ],
    },
    {
      name: 'kube-controller-manager',
      binary: o.binaries.kubeControllerManager,
      args: [
        `--kubeconfig=${o.kubeconfig}`,
        `--authentication-kubeconfig=${o.kubeconfig}`,
        `--authorization-kubeconfig=${o.kubeconfig}`,
        `--bind-address=${loopback}`,
        '--secure-port=0',
        `--root-ca-file=${o.pki.caCert}`,
        `--service-account-private-key-file=${o.pki.serviceAccountKey}`,
        '--use-service-account-credentials=true',
        // Lets the CertificateSigningRequest API issue kubelet serving certificates, as on a real cluster.
        `--cluster-signing-cert-file=${o.pki.caCert}`,
        `--cluster-signing-key-file=${o.pki.caKey}`,
        `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
        '--leader-elect=false',
      ],
    },
    {
      name: 'kube-scheduler',
      binary: o.binaries.kubeScheduler,
      args: [
        `--kubeconfig=${o.kubeconfig}`,
        `--authentication-kubeconfig=${o.kubeconfig}`,
        `--authorization-kubeconfig=${o.kubeconfig}`,
        `--bind-address=${loopback}`,
        '--secure-port=0',
        '--leader-elect=false',
      ],
    },
    {
      name: 'kwok',
      binary: o.binaries.kwok,
      args: [
        `--kubeconfig=${o.kubeconfig}`,
        '--manage-all-nodes=false',
        `--manage-nodes-with-annotation-selector=${SIMULATED_NODE_ANNOTATION}=${SIMULATED_NODE_ANNOTATION_VALUE}`,
        `--cidr=${o.podCidr}`,
        `--node-ip=${loopback}`,
        `--node-port=${o.ports.kwok}`,
        `--server-address=${loopback}:${o.ports.kwok}`,
        `--tls-cert-file=${o.pki.kwokServingCert}`,
        `--tls-private-key-file=${o.pki.kwokServingKey}`,
        '--node-lease-duration-seconds=40',
        `--config=${o.binaries.kwokStages}`,
        `--config=${join(import.meta.dirname, 'kwok', 'run-to-completion.yaml')}`,
        `--enable-crds=${KWOK_CRDS.join(',')}`,
      ],
    },
    metricsServerSpec(o),
  ];
}

function metricsServerSpec(o: ComponentOptions): ComponentSpec {
  if (!o.ports.metricsServer) throw new Error(`cluster ${o.clusterName} has no metrics-server port`);
  return {
    name: 'metrics-server',
    binary: o.binaries.metricsServer,
    args: [
      `--kubeconfig=${o.kubeconfig}`,
      `--authentication-kubeconfig=${o.kubeconfig}`,
      `--authorization-kubeconfig=${o.kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${o.ports.metricsServer}`,
      `--cert-dir=${join(o.dir, 'metrics-server')}`,
      // Kubelets are dialled at the address and port their Node status gives (virtual nodes: Spillway).
      '--kubelet-preferred-address-types=InternalIP',
      '--kubelet-use-node-status-port',
      // Kubelet serving certificates are verified where the API server verifies them too.
      ...(o.verifyKubeletCertificates
        ? [`--kubelet-certificate-authority=${o.pki.caCert}`]
        : ['--kubelet-insecure-tls']),
      // The smallest resolution metrics-server accepts, so `kubectl top` has data within seconds.
      '--metric-resolution=10s',
      '--kubelet-request-timeout=5s',
      `--node-selector=${NO_RESOURCE_METRICS_LABEL}!=off`,
    ],
  };
}
