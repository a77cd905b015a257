/**
 * Certificates for the etcd TLS tests, made with the openssl command line into a temporary
 * directory: a CA, a server certificate for 127.0.0.1 and localhost, a client certificate
 * signed by that CA, and a second CA — one etcd does not trust — with a client certificate of
 * its own. Keys are EC P-256: quick to generate, and accepted by etcd (Go) and grpc-js alike.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertificatePair {
  certFile: string;
  keyFile: string;
}

export interface TestCertificates {
  dir: string;
  /** The CA that signs the server and the trusted client certificate. */
  caFile: string;
  /** For etcd: SAN IP:127.0.0.1, DNS:localhost. */
  server: CertificatePair;
  /** Signed by `caFile`; etcd accepts it. */
  client: CertificatePair;
  /** A second CA that etcd does not trust. */
  untrustedCaFile: string;
  /** Signed by `untrustedCaFile`; etcd refuses it. */
  untrustedClient: CertificatePair;
  /** Removes the directory. */
  remove(): Promise<void>;
}

const VALID_DAYS = '2';

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed: ${(error as Error).message}\n${stderr}`);
  }
}

async function newKey(file: string): Promise<void> {
  await openssl([
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-out',
    file,
  ]);
}

async function newCa(dir: string, name: string): Promise<{ caFile: string; caKey: string }> {
  const caKey = path.join(dir, `${name}.key`);
  const caFile = path.join(dir, `${name}.crt`);
  await newKey(caKey);
  await openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    caKey,
    '-subj',
    `/CN=${name}`,
    '-days',
    VALID_DAYS,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    caFile,
  ]);
  return { caFile, caKey };
}

/** A certificate for `commonName`, signed by the CA, with the given X.509 v3 extensions. */
async function issue(
  dir: string,
  name: string,
  ca: { caFile: string; caKey: string },
  commonName: string,
  extensions: string[],
): Promise<CertificatePair> {
  const keyFile = path.join(dir, `${name}.key`);
  const csrFile = path.join(dir, `${name}.csr`);
  const certFile = path.join(dir, `${name}.crt`);
  const extFile = path.join(dir, `${name}.ext`);
  await newKey(keyFile);
  await openssl(['req', '-new', '-key', keyFile, '-subj', `/CN=${commonName}`, '-out', csrFile]);
  await writeFile(extFile, `${extensions.join('\n')}\n`);
  await openssl([
    'x509',
    '-req',
    '-in',
    csrFile,
    '-CA',
    ca.caFile,
    '-CAkey',
    ca.caKey,
    // A random serial instead of -CAcreateserial: certificates are issued in parallel.
    '-set_serial',
    `0x${randomBytes(8).toString('hex')}`,
    '-days',
    VALID_DAYS,
    '-extfile',
    extFile,
    '-out',
    certFile,
  ]);
  return { certFile, keyFile };
}

const SERVER_EXTENSIONS = [
  'basicConstraints=CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  // etcd checks client certificates of its own health and proxy connections too.
  'extendedKeyUsage=serverAuth,clientAuth',
  'subjectAltName=IP:127.0.0.1,DNS:localhost',
];

const CLIENT_EXTENSIONS = [
  'basicConstraints=CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=clientAuth',
];

/**
 * Generates everything into a new temporary directory `spl-certs-*`. The client certificates'
 * common name is `spl-client`, which is no etcd user: with auth enabled, etcd would take a
 * client certificate's CN as the user name when a request carries no token.
 */
export async function generateCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'spl-certs-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const [ca, otherCa] = await Promise.all([newCa(dir, 'ca'), newCa(dir, 'untrusted-ca')]);
    const [server, client, untrustedClient] = await Promise.all([
      issue(dir, 'server', ca, 'localhost', SERVER_EXTENSIONS),
      issue(dir, 'client', ca, 'spl-client', CLIENT_EXTENSIONS),
      issue(dir, 'untrusted-client', otherCa, 'spl-client', CLIENT_EXTENSIONS),
    ]);
    return {
      dir,
      caFile: ca.caFile,
      server,
      client,
      untrustedCaFile: otherCa.caFile,
      untrustedClient,
      remove,
    };
  } catch (error) {
    await remove();
    throw error;
  }
}
