/**
 * Key files for the proxies (`serve run --api-key-file`, `--admin-key-file`, `--metrics-key-file`, the
 * config file's `auth`): one key per line, '#' starts a comment, blank lines ignored. Read once at start.
 */
import { readFileSync } from 'node:fs';
import { DeploymentConfigError } from '../errors.js';

export function readKeyFile(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DeploymentConfigError(`key file ${file} cannot be read: ${(err as Error).message}`);
  }
  return text
    .split(/\r?\n/)
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean);
}
