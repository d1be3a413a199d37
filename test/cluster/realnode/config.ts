// The configuration files of a real node: containerd's, the CNI network's and the kubelet's. Every
// address is loopback or inside the node's own network namespace; nothing can be pulled (no registry
// is reachable and image garbage collection is off, since a removed image could not come back).
import { IMAGE_NAMES } from '../images/images.ts';

/** The pods' subnet, on the node namespace's bridge; the host namespace routes it nowhere (unreachable). */
export const POD_SUBNET = '10.89.0.0/24';

export interface NodePaths {
  readonly nodeDir: string;
  readonly runDir: string;
  readonly containerdSocket: string;
  readonly cniConfDir: string;
}

export function containerdConfig(p: NodePaths, snapshotter: string): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `# Written by Spillway's test clusters for the real node (containerd 1.6).
version = 2
root = "${p.nodeDir}/containerd"
state = "${p.runDir}/containerd"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "${p.containerdSocket}"

[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = "${p.nodeDir}/opt"

[${cri}]
  sandbox_image = "${IMAGE_NAMES.pause}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # The VM withholds CAP_SYS_RESOURCE: nothing may lower oom_score_adj (the kubelet asks -998 for pause).
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_apparmor = true
  # Pod network namespaces under the state directory, not in the machine's /run/netns.
  netns_mounts_under_state_dir = true

[${cri}.containerd]
  snapshotter = "${snapshotter}"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[${cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[${cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "${p.cniConfDir}"
  max_conf_num = 1

[${cri}.registry]
  config_path = ""
`;
}

/** A bridge with the pods' gateway address inside the node's namespace; no masquerade, no way out. */
export function cniConfig(p: NodePaths): string {
  return `${JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'spillway-real-node',
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: POD_SUBNET }]], dataDir: `${p.nodeDir}/cni-ipam` },
        },
      ],
    },
    null,
    2,
  )}\n`;
}

export interface KubeletConfigOptions {
  readonly port: number;
  readonly caCert: string;
  readonly servingCert: string;
  readonly servingKey: string;
  readonly cgroupRoot: string;
  readonly resolvConf: string;
  readonly podLogsDir: string;
  readonly containerdSocket: string;
}

export function kubeletConfig(o: KubeletConfigOptions): string {
  return `${JSON.stringify(
    {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      // Inside the node's network namespace; a relay publishes it on the host's 127.0.0.1:<port>.
      address: '127.0.0.1',
      port: o.port,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      containerRuntimeEndpoint: `unix://${o.containerdSocket}`,
      authentication: {
        anonymous: { enabled: false },
        webhook: { enabled: true },
        x509: { clientCAFile: o.caCert },
      },
      authorization: { mode: 'Webhook' },
      tlsCertFile: o.servingCert,
      tlsPrivateKeyFile: o.servingKey,
      // The machine has cgroup v1 (hybrid); the 1.36 kubelet then only warns.
      failCgroupV1: false,
      cgroupDriver: 'cgroupfs',
      cgroupRoot: o.cgroupRoot,
      cgroupsPerQOS: true,
      enforceNodeAllocatable: ['pods'],
      failSwapOn: false,
      resolvConf: o.resolvConf,
      clusterDomain: 'cluster.local',
      podLogsDir: o.podLogsDir,
      containerLogMaxSize: '10Mi',
      containerLogMaxFiles: 3,
      // Nothing can be pulled again, so nothing is collected.
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      serializeImagePulls: false,
      evictionHard: {
        'memory.available': '100Mi',
        'nodefs.available': '1%',
        'nodefs.inodesFree': '1%',
        'imagefs.available': '1%',
      },
      maxPods: 110,
      shutdownGracePeriod: '0s',
      rotateCertificates: false,
      serverTLSBootstrap: false,
      logging: { format: 'text' },
    },
    null,
    2,
  )}\n`;
}

export function kubeletKubeconfig(server: string, caCert: string, cert: string, key: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    `clusters: [{name: local, cluster: {server: "${server}", certificate-authority: "${caCert}"}}]`,
    `users: [{name: kubelet, user: {client-certificate: "${cert}", client-key: "${key}"}}]`,
    'contexts: [{name: local, context: {cluster: local, user: kubelet}}]',
    'current-context: local',
    '',
  ].join('\n');
}
