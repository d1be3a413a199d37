// Typed API access for tests: an independent client (client-node's own), not Spillway's.
import {
  CertificatesV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';

export interface Kube {
  readonly kubeConfig: KubeConfig;
  readonly core: CoreV1Api;
  readonly coordination: CoordinationV1Api;
  readonly certificates: CertificatesV1Api;
  readonly custom: CustomObjectsApi;
}

export function kube(kubeconfigPath: string): Kube {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  return {
    kubeConfig,
    core: kubeConfig.makeApiClient(CoreV1Api),
    coordination: kubeConfig.makeApiClient(CoordinationV1Api),
    certificates: kubeConfig.makeApiClient(CertificatesV1Api),
    custom: kubeConfig.makeApiClient(CustomObjectsApi),
  };
}

export function condition(node: V1Node | V1Pod | undefined, type: string) {
  return (
    node?.status?.conditions as
      | { type: string; status: string; reason?: string; message?: string; lastTransitionTime?: unknown }[]
      | undefined
  )?.find((c) => c.type === type);
}

/** A short random suffix that keeps names unique across test runs on shared clusters. */
export function uniqueSuffix(): string {
  return Math.random().toString(36).slice(2, 8);
}
