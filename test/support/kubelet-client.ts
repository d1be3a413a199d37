// Direct HTTPS calls to Spillway's kubelet port, as the API server and metrics-server make them.
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';

export interface Credentials {
  readonly cert?: string;
  readonly key?: string;
  readonly token?: string;
}

/** The client certificate in a kubeconfig: what the API server presents is the same kind of credential. */
export async function kubeconfigCredentials(kubeconfig: string): Promise<Credentials> {
  const text = await readFile(kubeconfig, 'utf8');
  const field = (name: string) =>
    Buffer.from(new RegExp(`${name}: (\\S+)`).exec(text)?.[1] ?? '', 'base64').toString();
  return { cert: field('client-certificate-data'), key: field('client-key-data') };
}

/** GET on the kubelet port (the serving certificate is not verified: these tests are about the API). */
export function kubeletGet(
  port: number,
  path: string,
  credentials: Credentials = {},
  extraHeaders: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        rejectUnauthorized: false,
        cert: credentials.cert,
        key: credentials.key,
        headers: {
          ...(credentials.token ? { authorization: `Bearer ${credentials.token}` } : {}),
          ...extraHeaders,
        },
      },
      (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}
