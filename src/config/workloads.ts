// The sections for what workloads use besides their containers: service-account tokens (pods.serviceAccounts),
// Services across clusters (services), storage (storage) and the host namespaces' offloading policy
// (namespaces). Each feature is on where it is safe and off where it crosses a trust boundary.
import { z } from 'zod';
import { dnsLabel, dnsSubdomain } from './fields.ts';

/**
 * Which API a delegate's service-account token is for. host: a token of the pod's host ServiceAccount,
 * requested from the host and bound to the host pod (needs host.externalServer, which is the opt-in);
 * remote: the remote namespace's ServiceAccount of the same name (opt-in with allowRemote); none: no
 * token at all.
 */
export const serviceAccountsSection = z
  .strictObject({
    /** The choice for pods without the spillway.dev/service-account-api annotation; auto: host when host.externalServer is set, else none. */
    default: z.enum(['auto', 'host', 'remote', 'none']).default('auto'),
    /**
     * Whether pods may choose the remote's API (annotation value "remote"): whoever creates pods in a host
     * namespace then acts as the remote ServiceAccounts of its remote namespace. Off by default.
     */
    allowRemote: z.boolean().default(false),
    /** A host token is requested again at 80 % of its lifetime, or once it is this old (a kubelet's 24 h). */
    maxTokenAgeSeconds: z.number().int().min(10).max(86_400).default(86_400),
  })
  .prefault({});

/** Services of namespaces with pods on a virtual node, reflected into their remote namespace. */
export const servicesSection = z
  .strictObject({
    /** Default for every host namespace; the annotations spillway.dev/reflect-services (namespace) and spillway.dev/reflect (Service) override it. */
    enabled: z.boolean().default(true),
  })
  .prefault({});

/** PersistentVolumeClaims and generic ephemeral volumes of pods on virtual nodes, provisioned in the remote. */
export const storageSection = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** Host StorageClasses with this provisioner are Spillway's: their claims are provisioned in the remote the pod lands in. */
    provisioner: z
      .string()
      .regex(
        /^[a-z0-9]([-a-z0-9./]{0,61}[a-z0-9])?$/,
        'must be a provisioner name, such as spillway.dev/remote',
      )
      .default('spillway.dev/remote'),
    /** Host StorageClass name → remote StorageClass name (default: the same name). */
    classes: z
      .record(z.string().regex(dnsSubdomain), z.string().regex(dnsSubdomain).or(z.literal('')))
      .default({}),
  })
  .prefault({});

/** How host namespaces are offloaded; their annotations choose remotes and remote namespace names. */
export const namespacesSection = z
  .strictObject({
    /**
     * Honour spillway.dev/remote-namespace (an explicit remote namespace) and
     * spillway.dev/remote-namespace-naming (prefix | same) on host namespaces. Off by default: whoever may
     * annotate a host namespace would choose which remote namespace its pods and copies land in.
     */
    mappingAnnotations: z.boolean().default(false),
    /** Remote namespaces no mapping may name (an annotation naming one is refused with an event). */
    reserved: z.array(z.string().regex(dnsLabel)).default(['kube-system', 'kube-public', 'kube-node-lease']),
  })
  .prefault({});
