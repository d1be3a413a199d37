// One cluster's credentials at run time: the TLS material for its connections and the Authorization
// header for each request. Files are read again when connections are renewed (rotated certificates),
// token files at most once a minute (projected service-account tokens rotate), and exec credential
// plugins are run without blocking the event loop and again when their credential expires or the
// server refuses it.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { RequestOptions } from 'node:https';

export interface KubeCluster {
  readonly name: string;
  /** Without a trailing slash. */
  readonly server: string;
  readonly skipTLSVerify: boolean;
  readonly tlsServerName?: string;
  readonly caFile?: string;
  readonly caData?: Buffer;
}

export interface ExecConfig {
  readonly apiVersion: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly provideClusterInfo: boolean;
}

export interface KubeUser {
  readonly name: string;
  readonly certFile?: string;
  readonly certData?: Buffer;
  readonly keyFile?: string;
  readonly keyData?: Buffer;
  readonly token?: string;
  readonly tokenFile?: string;
  readonly username?: string;
  readonly password?: string;
  readonly exec?: ExecConfig;
}

export interface KubeContext {
  readonly name: string;
  readonly cluster: KubeCluster;
  readonly user: KubeUser;
}

/** The other contexts of the kubeconfig, resolved (and checked) when one is chosen. */
export interface KubeContexts {
  readonly names: readonly string[];
  resolve(name: string): KubeContext;
}

/** What a TLS connection to the cluster needs (node:https and ws take these options as they are). */
export interface TlsOptions {
  ca?: Buffer;
  cert?: Buffer | string;
  key?: Buffer | string;
  rejectUnauthorized: boolean;
  servername?: string;
}

interface ExecCredential {
  token?: string;
  cert?: string;
  key?: string;
  expiresAt: number;
}

const TOKEN_FILE_REFRESH_MS = 60_000;
const EXEC_TIMEOUT_MS = 30_000;

async function readOptional(file: string | undefined, data: Buffer | undefined): Promise<Buffer | undefined> {
  if (data) return data;
  return file ? readFile(file) : undefined;
}

export class KubeConfig {
  private context: KubeContext;
  private readonly source: string;
  private readonly contexts: KubeContexts | undefined;
  private tokenFromFile: { token: string; at: number } | undefined;
  private execCredential: ExecCredential | undefined;
  private execRunning: Promise<ExecCredential> | undefined;

  constructor(context: KubeContext, source: string, contexts?: KubeContexts) {
    this.context = context;
    this.source = source;
    this.contexts = contexts;
  }

  get cluster(): KubeCluster {
    return this.context.cluster;
  }

  get user(): KubeUser {
    return this.context.user;
  }

  /** The cluster in use, shaped as client-node's (so code written for either reads it alike). */
  getCurrentCluster(): {
    name: string;
    server: string;
    skipTLSVerify: boolean;
    caData?: string;
    caFile?: string;
    tlsServerName?: string;
  } {
    const { name, server, skipTLSVerify, caData, caFile, tlsServerName } = this.cluster;
    return { name, server, skipTLSVerify, caData: caData?.toString('base64'), caFile, tlsServerName };
  }

  /** The user in use, shaped as client-node's (its name and inline token). */
  getCurrentUser(): { name: string; token?: string } {
    return { name: this.user.name, token: this.user.token };
  }

  getContextObject(name: string): { name: string } | undefined {
    return this.contexts?.names.includes(name) ? { name } : undefined;
  }

  /** Chooses another context of the same kubeconfig (before any client uses this one). */
  setCurrentContext(name: string): void {
    if (!this.contexts) throw new Error(`no context "${name}"`);
    this.context = this.contexts.resolve(name);
    this.invalidate();
  }

  /** The kubeconfig text it came from (fingerprints of a remote's configuration). */
  exportConfig(): string {
    return this.source;
  }

  /** TLS options for new connections: files are read again each time, exec certificates renewed. */
  async tlsOptions(): Promise<TlsOptions> {
    const { cluster, user } = this;
    const options: TlsOptions = { rejectUnauthorized: !cluster.skipTLSVerify };
    const ca = await readOptional(cluster.caFile, cluster.caData);
    if (ca) options.ca = ca;
    if (cluster.tlsServerName) options.servername = cluster.tlsServerName;
    const cert = await readOptional(user.certFile, user.certData);
    const key = await readOptional(user.keyFile, user.keyData);
    if (cert && key) {
      options.cert = cert;
      options.key = key;
    } else if (user.exec) {
      const credential = await this.execute();
      if (credential.cert && credential.key) {
        options.cert = credential.cert;
        options.key = credential.key;
      }
    }
    return options;
  }

  /** Until when the TLS options stay valid (an exec plugin's client certificate expires). */
  tlsValidUntil(): number {
    const credential = this.execCredential;
    return credential?.cert ? credential.expiresAt : Number.POSITIVE_INFINITY;
  }

  /** The Authorization header value for the next request, if the user authenticates by header. */
  async authorization(): Promise<string | undefined> {
    const { user } = this;
    if (user.token) return `Bearer ${user.token}`;
    if (user.tokenFile) {
      const cached = this.tokenFromFile;
      if (!cached || Date.now() - cached.at > TOKEN_FILE_REFRESH_MS) {
        const token = (await readFile(user.tokenFile, 'utf8')).trim();
        this.tokenFromFile = { token, at: Date.now() };
      }
      return `Bearer ${this.tokenFromFile?.token}`;
    }
    if (user.username && user.password) {
      return `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;
    }
    if (user.exec) {
      const credential = await this.execute();
      if (credential.token) return `Bearer ${credential.token}`;
    }
    return undefined;
  }

  /** The server refused our credentials (401): a token read or issued earlier is fetched anew. */
  invalidate(): void {
    this.tokenFromFile = undefined;
    this.execCredential = undefined;
  }

  /** client-node's way of applying credentials to node:https options (used for WebSockets). */
  async applyToHTTPSOptions(options: RequestOptions): Promise<void> {
    Object.assign(options, await this.tlsOptions());
    const authorization = await this.authorization();
    if (authorization) options.headers = { ...options.headers, authorization };
  }

  private async execute(): Promise<ExecCredential> {
    const cached = this.execCredential;
    // Renewed a little before it expires, so no request goes out with a credential about to lapse.
    if (cached && cached.expiresAt - 10_000 > Date.now()) return cached;
    this.execRunning ??= this.runExec().finally(() => {
      this.execRunning = undefined;
    });
    this.execCredential = await this.execRunning;
    return this.execCredential;
  }

  private runExec(): Promise<ExecCredential> {
    const exec = this.user.exec as ExecConfig;
    const info = {
      apiVersion: exec.apiVersion,
      kind: 'ExecCredential',
      spec: {
        interactive: false,
        ...(exec.provideClusterInfo
          ? {
              cluster: {
                server: this.cluster.server,
                'insecure-skip-tls-verify': this.cluster.skipTLSVerify,
                ...(this.cluster.caData
                  ? { 'certificate-authority-data': this.cluster.caData.toString('base64') }
                  : {}),
              },
            }
          : {}),
      },
    };
    return new Promise((resolve, reject) => {
      execFile(
        exec.command,
        [...exec.args],
        {
          env: { ...process.env, ...exec.env, KUBERNETES_EXEC_INFO: JSON.stringify(info) },
          timeout: EXEC_TIMEOUT_MS,
          maxBuffer: 1024 * 1024,
        },
        (error, stdout, stderr) => {
          if (error) {
            reject(
              new Error(`exec credential plugin ${exec.command} failed: ${stderr.trim() || error.message}`, {
                cause: error,
              }),
            );
            return;
          }
          try {
            const status = (JSON.parse(stdout) as { status?: Record<string, string> }).status ?? {};
            const expiresAt = status.expirationTimestamp
              ? Date.parse(status.expirationTimestamp)
              : Number.POSITIVE_INFINITY;
            if (!status.token && !(status.clientCertificateData && status.clientKeyData)) {
              throw new Error('its ExecCredential has neither a token nor a client certificate');
            }
            resolve({
              token: status.token,
              cert: status.clientCertificateData,
              key: status.clientKeyData,
              expiresAt,
            });
          } catch (cause) {
            reject(
              new Error(`exec credential plugin ${exec.command}: ${(cause as Error).message}`, { cause }),
            );
          }
        },
      );
    });
  }
}
