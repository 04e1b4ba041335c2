/**
 * TLS for the proxies: a certificate chain and its private key, each given as PEM text or as the path of a
 * PEM file (`serve run --tls-cert FILE --tls-key FILE`, the config file's `tls`). Read once at start, so a
 * missing or unreadable file fails the start with its name rather than the first handshake.
 */
import { readFileSync } from 'node:fs';
import { DeploymentConfigError } from '../errors.js';

export interface TlsOptions {
  /** PEM certificate chain (leaf first), or the path of a file holding it. */
  cert: string | Buffer;
  /** PEM private key of the certificate, or the path of a file holding it. */
  key: string | Buffer;
}

export interface LoadedTls {
  cert: Buffer;
  key: Buffer;
}

export function loadTls(tls: TlsOptions): LoadedTls {
  if (!tls || tls.cert === undefined || tls.key === undefined)
    throw new DeploymentConfigError('tls needs both cert and key (PEM text or file paths)');
  return { cert: pem(tls.cert, 'cert'), key: pem(tls.key, 'key') };
}

function pem(value: string | Buffer, what: string): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value !== 'string' || value === '')
    throw new DeploymentConfigError(`tls.${what} must be PEM text or a file path`);
  if (value.includes('-----BEGIN')) return Buffer.from(value);
  try {
    return readFileSync(value);
  } catch (err) {
    throw new DeploymentConfigError(`tls.${what} file ${value} cannot be read: ${(err as Error).message}`);
  }
}
