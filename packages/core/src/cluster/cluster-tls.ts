/**
 * TLS on the cluster port, from PEM files. The head presents its certificate (and, with
 * requireClientCert, verifies each client's against `caFile`); clients verify the head's certificate
 * against `caFile` (the system's roots when absent) and present their own for mutual TLS.
 * Without TLS options both sides speak plaintext gRPC (the cluster token is still required).
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { ClusterError } from '../errors.js';

export interface ClusterServerTls {
  /** The head's certificate chain (PEM). */
  certFile: string;
  /** Its private key (PEM). */
  keyFile: string;
  /** CA that signs client certificates; needed with requireClientCert. */
  caFile?: string;
  /** Mutual TLS: refuse connections without a client certificate signed by caFile. Default: false. */
  requireClientCert?: boolean;
}

export interface ClusterClientTls {
  /** CA that signed the head's certificate (PEM). Default: the system's root CAs. */
  caFile?: string;
  /** This client's certificate (PEM), for a head that requires client certificates. */
  certFile?: string;
  /** Its private key (PEM). */
  keyFile?: string;
  /** Name to verify the head's certificate against when it differs from the address's host. */
  serverName?: string;
}

export function serverCredentials(tls: ClusterServerTls | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  if (!tls.certFile || !tls.keyFile)
    throw new ClusterError('cluster TLS needs both a certificate and its key (--cluster-tls-cert, --cluster-tls-key)');
  if (tls.requireClientCert && !tls.caFile)
    throw new ClusterError('requiring client certificates needs the CA that signs them (--cluster-tls-ca)');
  return grpc.ServerCredentials.createSsl(
    tls.caFile ? pem(tls.caFile, 'CA') : null,
    [{ cert_chain: pem(tls.certFile, 'certificate'), private_key: pem(tls.keyFile, 'key') }],
    tls.requireClientCert ?? false,
  );
}

export function channelCredentials(tls: ClusterClientTls | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  if (Boolean(tls.certFile) !== Boolean(tls.keyFile))
    throw new ClusterError('a client certificate needs its key and the other way round (--tls-cert with --tls-key)');
  return grpc.credentials.createSsl(
    tls.caFile ? pem(tls.caFile, 'CA') : null,
    tls.keyFile ? pem(tls.keyFile, 'key') : null,
    tls.certFile ? pem(tls.certFile, 'certificate') : null,
  );
}

/** Channel options of a client with `tls` (the name its head's certificate is checked against). */
export function channelOptions(tls: ClusterClientTls | undefined): grpc.ChannelOptions {
  return tls?.serverName ? { 'grpc.ssl_target_name_override': tls.serverName } : {};
}

/**
 * A clearer message for a failed connection when it looks like a TLS problem (an untrusted or
 * mismatched certificate, one side speaking TLS and the other not), else undefined.
 */
export function tlsHint(details: string, usingTls: boolean): string | undefined {
  const d = details.toLowerCase();
  if (usingTls && /wrong version number|packet length too long|http_request/.test(d))
    return 'the head does not speak TLS on this port (started without --cluster-tls-cert?): drop --tls/--tls-ca, or give the head a certificate';
  if (usingTls && /certificate required|alert (bad|unknown) certificate|alert number (42|116)/.test(d))
    return 'the head requires a client certificate signed by its CA: pass --tls-cert and --tls-key';
  if (/certificate|self[- ]signed|unable to (get|verify)|ssl|tls|handshake|altname|hostname/.test(d)) {
    return usingTls
      ? "TLS with the head failed: is --tls-ca the CA that signed the head's certificate, and does the certificate name the address dialled (or --tls-server-name)?"
      : 'the head seems to speak TLS: pass --tls-ca with the CA that signed its certificate (or --tls for the system roots)';
  }
  // A plaintext client at a TLS port sees only a failed connection; a closed port says ECONNREFUSED.
  if (!usingTls && /failed to connect|connection dropped|socket closed/.test(d) && !/econnrefused/.test(d))
    return 'if the head uses TLS on this port, pass --tls-ca with the CA that signed its certificate';
  return undefined;
}

function pem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ClusterError(`cannot read the cluster TLS ${what} ${file}: ${(err as Error).message}`);
  }
}
