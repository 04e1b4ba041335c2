/**
 * `serve status` and `serve shutdown`: talk to a running instance's admin routes over HTTP. `serve status`
 * also reads a head's status through its cluster port (an address without http://), with the cluster token.
 */
import type { ServeStatus } from '../contract/status.js';
import { fetchClusterStatus } from '../cluster/cluster-client.js';
import { CliError, causeOf } from './cli-error.js';
import { clusterClientAuth, type ClusterClientCliOptions } from './cluster-options.js';
import { renderStatus } from './status-table.js';

export const DEFAULT_ADDRESS = 'http://127.0.0.1:8000';

export async function statusCommand(
  address: string,
  json: boolean,
  cluster: ClusterClientCliOptions = {},
  key?: string,
): Promise<string> {
  const status = /^https?:\/\//i.test(address)
    ? ((await (await request(address, '/-/status', 'GET', key)).json()) as ServeStatus)
    : await clusterStatus(address, cluster);
  return json ? `${JSON.stringify(status, null, 2)}\n` : renderStatus(status);
}

/** `key`: an admin key, needed when the instance has keys (see cli/ingress-options.ts adminKeyFrom). */
export async function shutdownCommand(address: string, waitMs = 60_000, key?: string): Promise<string> {
  await request(address, '/-/shutdown', 'POST', key);
  // The instance drains before it stops listening; wait until it is gone so scripts can rely on it.
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    try {
      await fetch(new URL('/-/healthz', address), { signal: AbortSignal.timeout(1000) });
    } catch {
      return `Flotilla at ${address} has shut down.\n`;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return `Shutdown requested at ${address}; it is still draining after ${waitMs / 1000}s.\n`;
}

async function clusterStatus(address: string, opts: ClusterClientCliOptions): Promise<ServeStatus> {
  try {
    return await fetchClusterStatus(address, clusterClientAuth(opts));
  } catch (err) {
    throw new CliError(
      `Cannot read the status of ${address}: ${causeOf(err)}`,
      "Pass http://HOST:PORT for an instance's HTTP proxy, or the head's cluster HOST:PORT with its token (--token-file).",
    );
  }
}

async function request(address: string, path: string, method: 'GET' | 'POST', key?: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(new URL(path, address), {
      method,
      headers: key ? { authorization: `Bearer ${key}` } : {},
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new CliError(
      `Cannot reach Flotilla at ${address} (${(err as Error).cause ?? (err as Error).message}).`,
      'Start one with `serve run FILE:EXPORT`, or pass --address http://HOST:PORT of the running instance.',
    );
  }
  if (!res.ok) {
    const text = await res.text();
    throw new CliError(
      `${method} ${path} at ${address} answered ${res.status}: ${text.slice(0, 300)}`,
      res.status === 401 || res.status === 403
        ? 'The instance wants a key: pass an admin key (or, for status, a metrics key) with --key-file FILE or ' +
            'FLOTILLA_ADMIN_KEY; without keys, admin routes accept loopback only.'
        : 'Check that --address points at a Flotilla HTTP proxy.',
    );
  }
  return res;
}
