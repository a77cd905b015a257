/**
 * The test cluster's TLS client side: its certificate, key and CA read once at start, and a
 * bounded GET over HTTPS that presents them (members with `--client-cert-auth` refuse anyone
 * else, and fetch cannot present a client certificate).
 */
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { HttpAnswer } from '../../src/demo/etcdHealth.js';

export interface EtcdClusterTls {
  certFile: string;
  keyFile: string;
  caFile: string;
}

/** The harness's TLS client material, read once at start. */
export interface ClientTls {
  files: EtcdClusterTls;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export async function readClientTls(files: EtcdClusterTls): Promise<ClientTls> {
  const [ca, cert, key] = await Promise.all(
    [files.caFile, files.certFile, files.keyFile].map((file) => readFile(file)),
  );
  return { files, ca: ca!, cert: cert!, key: key! };
}

/** `httpGet` over TLS with a client certificate; undefined when nothing answered in time. */
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
