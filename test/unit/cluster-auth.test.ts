/**
 * The cluster credential's pure parts and its file handling in a temp config directory: where a token
 * comes from (and in which order), generation (random, mode 0600, never overwriting a concurrent head's),
 * validation, the constant-time match, bearer parsing, the throttled refusal log and TLS failure hints.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ClusterError } from '@flotilla/core';
import {
  RefusalLog,
  authProblem,
  bearerToken,
  tokenDigest,
  tokenMatches,
} from '../../packages/core/src/cluster/cluster-auth.js';
import {
  configDir,
  defaultTokenPath,
  describeToken,
  findToken,
  generateToken,
  headToken,
  tokenProblem,
} from '../../packages/core/src/cluster/cluster-token.js';
import { tlsHint } from '../../packages/core/src/cluster/cluster-tls.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'flotilla-token-unit-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('cluster token sources', () => {
  it('config dir: FLOTILLA_CONFIG_DIR, else $HOME/.flotilla', () => {
    expect(configDir({ FLOTILLA_CONFIG_DIR: '/x/y', HOME: '/home/a' })).toBe('/x/y');
    expect(configDir({ HOME: '/home/a' })).toBe('/home/a/.flotilla');
    expect(defaultTokenPath({ HOME: '/home/a' })).toBe('/home/a/.flotilla/cluster-token');
  });

  it('order: given, token file, environment, config directory', () => {
    const dir = tempDir();
    const file = path.join(dir, 'given-file');
    writeFileSync(file, 'from-the-token-file-0001\n', { mode: 0o600 });
    writeFileSync(path.join(dir, 'cluster-token'), 'from-the-config-dir-0001', { mode: 0o600 });
    const env = { FLOTILLA_CONFIG_DIR: dir, FLOTILLA_CLUSTER_TOKEN: 'from-the-environment-01' };
    expect(findToken({ token: 'given-in-code-0000001', tokenFile: file }, env)).toMatchObject({
      token: 'given-in-code-0000001',
      source: 'option',
    });
    expect(findToken({ tokenFile: file }, env)).toMatchObject({ token: 'from-the-token-file-0001', source: 'file' });
    expect(findToken({}, env)).toMatchObject({ token: 'from-the-environment-01', source: 'env' });
    expect(findToken({}, { FLOTILLA_CONFIG_DIR: dir })).toMatchObject({
      token: 'from-the-config-dir-0001',
      source: 'config-dir',
    });
    expect(findToken({}, { FLOTILLA_CONFIG_DIR: tempDir() })).toBeUndefined();
  });

  it('a head with none generates one (mode 0600, dir 0700) and reuses it; describe names the file, not the token', () => {
    const dir = path.join(tempDir(), 'nested', 'config');
    const env = { FLOTILLA_CONFIG_DIR: dir };
    const made = headToken({}, env);
    expect(made.source).toBe('generated');
    expect(made.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(made.path!).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readFileSync(made.path!, 'utf8').trim()).toBe(made.token);
    expect(describeToken(made)).toContain(made.path!);
    expect(describeToken(made)).not.toContain(made.token);
    const again = headToken({}, env);
    expect(again).toMatchObject({ token: made.token, source: 'config-dir' });
    expect(generateToken()).not.toBe(generateToken());
  });

  it('bad tokens are refused with the reason; an open file mode gets a warning', () => {
    expect(tokenProblem('short')).toMatch(/at least 16 characters/);
    expect(tokenProblem('has a space in it 123')).toMatch(/printable ASCII without spaces/);
    expect(tokenProblem('fine-token-0123456789')).toBeNull();
    expect(() => findToken({ token: 'short' })).toThrow(ClusterError);
    const dir = tempDir();
    const file = path.join(dir, 't');
    writeFileSync(file, 'x');
    expect(() => findToken({ tokenFile: file })).toThrow(/bad cluster token in .*t: a cluster token needs at least 16/);
    expect(() => findToken({ tokenFile: path.join(dir, 'missing') })).toThrow(/cannot read the cluster token file/);
    writeFileSync(file, 'readable-by-all-000000');
    chmodSync(file, 0o644);
    expect(findToken({ tokenFile: file })!.warning).toMatch(/readable by others \(mode 0644\): chmod 600/);
  });
});

describe('cluster token check', () => {
  const expected = tokenDigest('the-right-token-0123456789');
  const md = (value?: string) => {
    const m = new grpc.Metadata();
    if (value !== undefined) m.set('authorization', value);
    return m;
  };

  it('matches only the exact token, through equal-length digests', () => {
    expect(tokenDigest('a')).toHaveLength(32);
    expect(tokenMatches('the-right-token-0123456789', expected)).toBe(true);
    expect(tokenMatches('the-right-token-012345678', expected)).toBe(false);
    expect(tokenMatches('', expected)).toBe(false);
  });

  it('reads "Bearer TOKEN" and says what is wrong otherwise', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer abc')).toBeUndefined();
    expect(bearerToken('Bearer ')).toBeUndefined();
    expect(bearerToken(Buffer.from('Bearer abc'))).toBeUndefined();
    expect(authProblem(md('Bearer the-right-token-0123456789'), expected)).toBeNull();
    expect(authProblem(md(), expected)).toBe('no cluster token');
    expect(authProblem(md('the-right-token-0123456789'), expected)).toMatch(/malformed/);
    expect(authProblem(md('Bearer wrong'), expected)).toBe('a wrong cluster token');
  });

  it('logs at most one refusal a second, counting the rest', () => {
    const lines: string[] = [];
    const log = new RefusalLog((l) => lines.push(l), 1000);
    log.refused('Deploy', '10.0.0.9:5000', 'no cluster token', 10_000);
    log.refused('Deploy', '10.0.0.9:5001', 'no cluster token', 10_100);
    log.refused('RegisterNode', '10.0.0.9:5002', 'no cluster token', 10_500);
    log.refused('ProxyState', '10.0.0.8:6000', 'a wrong cluster token', 11_200);
    expect(lines).toEqual([
      'refused Deploy from 10.0.0.9:5000: no cluster token',
      'refused ProxyState from 10.0.0.8:6000: a wrong cluster token (and 2 more refused calls since the last line)',
    ]);
  });
});

describe('TLS failure hints', () => {
  it('names the likely cause', () => {
    expect(tlsHint('Error: unable to verify the first certificate', true)).toMatch(/is --tls-ca the CA/);
    expect(tlsHint('SSL routines:ssl3_get_record:wrong version number', true)).toMatch(/does not speak TLS/);
    expect(tlsHint('ssl3_read_bytes:tlsv13 alert certificate required', true)).toMatch(/requires a client certificate/);
    expect(tlsHint('No connection established. Last error: Failed to connect', false)).toMatch(/pass --tls-ca/);
    expect(tlsHint('connect ECONNREFUSED 127.0.0.1:1', false)).toBeUndefined();
    expect(tlsHint('connect ECONNREFUSED 127.0.0.1:1', true)).toBeUndefined();
  });
});
