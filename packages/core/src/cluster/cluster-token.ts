/**
 * The cluster token: the shared secret every cluster RPC carries (cluster-auth.ts checks it). Where it
 * comes from, in order:
 *
 *   1. given in code (ClusterHeadOptions.token / ClusterAgentOptions.token);
 *   2. a token file given explicitly (`--token-file`, a mounted Kubernetes Secret);
 *   3. the environment variable FLOTILLA_CLUSTER_TOKEN;
 *   4. the user's config directory: $FLOTILLA_CONFIG_DIR/cluster-token, else ~/.flotilla/cluster-token
 *      (honouring $HOME). A head that finds none of these generates a token there (32 random bytes,
 *      mode 0600 in a 0700 directory), so agents and `serve deploy` on the same machine find it with no
 *      flag; other machines get it through 2 or 3.
 *
 * The token itself is never logged or printed; only where it lives is.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClusterError } from '../errors.js';

export const CLUSTER_TOKEN_ENV = 'FLOTILLA_CLUSTER_TOKEN';
export const CONFIG_DIR_ENV = 'FLOTILLA_CONFIG_DIR';
export const TOKEN_FILE_NAME = 'cluster-token';
/** Shorter secrets are refused: a guessable token is no credential. */
export const MIN_TOKEN_LENGTH = 16;

export type TokenSource = 'option' | 'file' | 'env' | 'config-dir' | 'generated';

export interface ResolvedToken {
  token: string;
  source: TokenSource;
  /** The file it was read from or written to (file, config-dir, generated). */
  path?: string;
  /** Set when the file is readable by group or others: a line telling the user to chmod it. */
  warning?: string;
}

export interface TokenInput {
  token?: string;
  tokenFile?: string;
}

type Env = Record<string, string | undefined>;

/** $FLOTILLA_CONFIG_DIR, else $HOME/.flotilla (os.homedir() when HOME is unset). */
export function configDir(env: Env = process.env): string {
  return env[CONFIG_DIR_ENV] || path.join(env.HOME || os.homedir(), '.flotilla');
}

export function defaultTokenPath(env: Env = process.env): string {
  return path.join(configDir(env), TOKEN_FILE_NAME);
}

/**
 * Why `token` cannot be a cluster token, or null. Tokens travel as a gRPC metadata value, so they must be
 * printable ASCII without spaces; they must be long enough not to be guessed.
 */
export function tokenProblem(token: string): string | null {
  if (token.length < MIN_TOKEN_LENGTH) return `a cluster token needs at least ${MIN_TOKEN_LENGTH} characters`;
  if (!/^[\x21-\x7e]+$/.test(token)) return 'a cluster token must be printable ASCII without spaces';
  return null;
}

/** A fresh token: 32 bytes from the system's CSPRNG, base64url (43 characters). */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The token a client (agent, `serve deploy`, `serve status`) presents: sources 1-4 without generating.
 * Undefined when there is none (the caller says what to do; an agent keeps looking while the head on
 * its machine may still be starting).
 */
export function findToken(input: TokenInput = {}, env: Env = process.env): ResolvedToken | undefined {
  if (input.token !== undefined) return { token: checked(input.token, 'the token given'), source: 'option' };
  if (input.tokenFile) return readTokenFile(input.tokenFile, 'file', true)!;
  const fromEnv = env[CLUSTER_TOKEN_ENV];
  if (fromEnv) return { token: checked(fromEnv.trim(), CLUSTER_TOKEN_ENV), source: 'env' };
  return readTokenFile(defaultTokenPath(env), 'config-dir', false);
}

/** The token a head accepts: as findToken, else a new one written to the config directory. */
export function headToken(input: TokenInput = {}, env: Env = process.env): ResolvedToken {
  const found = findToken(input, env);
  if (found) return found;
  const file = defaultTokenPath(env);
  const token = generateToken();
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    // 'wx': a head starting at the same moment may have written one; then both use that one.
    writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readTokenFile(file, 'config-dir', true)!;
    throw new ClusterError(
      `cannot store the cluster token in ${file}: ${(err as Error).message} ` +
        `(set ${CONFIG_DIR_ENV} to a writable directory, or pass ${CLUSTER_TOKEN_ENV} / a token file)`,
    );
  }
  // A umask cannot widen 0600, but a mode given to an existing path is ignored: make sure.
  chmodSync(file, 0o600);
  return { token, source: 'generated', path: file };
}

/** One line for logs: where the token came from, never the token. */
export function describeToken(t: ResolvedToken): string {
  switch (t.source) {
    case 'option':
      return 'cluster token given by the caller';
    case 'env':
      return `cluster token from ${CLUSTER_TOKEN_ENV}`;
    case 'generated':
      return `generated a cluster token in ${t.path} (mode 0600); agents and serve deploy on this machine find it there, other machines need it as ${CLUSTER_TOKEN_ENV} or --token-file`;
    default:
      return `cluster token from ${t.path}`;
  }
}

function readTokenFile(file: string, source: 'file' | 'config-dir', required: boolean): ResolvedToken | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ClusterError(`cannot read the cluster token file ${file}: ${(err as Error).message}`);
  }
  const token = checked(text.trim(), file);
  const mode = statSync(file).mode & 0o777;
  const warning =
    mode & 0o077
      ? `the cluster token file ${file} is readable by others (mode 0${mode.toString(8)}): chmod 600 ${file}`
      : undefined;
  return { token, source, path: file, ...(warning ? { warning } : {}) };
}

function checked(token: string, where: string): string {
  const problem = tokenProblem(token);
  if (problem) throw new ClusterError(`bad cluster token in ${where}: ${problem}`);
  return token;
}
