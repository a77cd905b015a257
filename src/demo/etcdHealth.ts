/**
 * Whether an etcd member of the local cluster is healthy, asked over HTTP or, with TLS, over
 * HTTPS with the harness's client certificate. Every call is bounded by its timeout and
 * answers undefined rather than throwing.
 */
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { EtcdClusterTls } from './etcdCluster.js';

/** The harness's TLS client material, read once at start. */
export interface ClientTls {
  files: EtcdClusterTls;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export interface HttpAnswer {
  status: number;
  body: string;
}

/** etcd 3.4 answers {"health":"true"} only when the member has a leader and serves reads. */
export function isHealthy(answer: HttpAnswer | undefined): boolean {
  if (answer?.status !== 200) return false;
  try {
    return (JSON.parse(answer.body) as { health?: unknown }).health === 'true';
  } catch {
    return false;
  }
}

/** A member that does not answer (its /metrics) has no peers worth waiting for. */
export function hasActivePeers(answer: HttpAnswer | undefined): boolean {
  return answer !== undefined && /^etcd_network_active_peers\{[^}]*\} [1-9]/m.test(answer.body);
}

export async function readClientTls(files: EtcdClusterTls): Promise<ClientTls> {
  const [ca, cert, key] = await Promise.all(
    [files.caFile, files.certFile, files.keyFile].map((file) => readFile(file)),
  );
  return { files, ca: ca!, cert: cert!, key: key! };
}

/** `httpGet` over TLS with a client certificate, which fetch cannot present. */
export function httpsGet(
  url: string,
  tls: ClientTls,
  timeoutMs = 1000,
): Promise<HttpAnswer | undefined> {
  return new Promise((resolve) => {
    const request = https.get(
      url,
      {
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        agent: false,
        signal: AbortSignal.timeout(timeoutMs),
      },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (text: string) => (body += text));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
        response.on('error', () => resolve(undefined));
      },
    );
    request.on('error', () => resolve(undefined));
  });
}
