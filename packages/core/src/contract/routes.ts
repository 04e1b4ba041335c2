/**
 * Core's shared vocabulary for calls and routes: what a method is, how a call is made, the route table
 * the proxies serve, and the plain-data HTTP request a raw-HTTP deployment receives. Types only; every
 * folder (actors, routers, controller, ingress) imports them from here, so none depends on another for words.
 */
import type { Cancellation } from '../actor/cancellation.js';

export type MethodKind = 'unary' | 'stream';

export interface RouteInfo {
  app: string;
  /** e.g. '/' or '/summarize'; unique across applications. */
  routePrefix: string;
  /** The application's ingress deployment (the root of its bind graph). */
  ingress: string;
  /** All deployments of the app, for gRPC calls that name one. */
  deployments: string[];
  /** Public methods of the ingress class and whether each is an async generator. */
  methods: Record<string, MethodKind>;
  /** True when the ingress class defines handleHttp(req): the proxy hands it every request under the prefix. */
  rawHttp: boolean;
  /**
   * True when the raw-HTTP class declares `static handlesMalformedJson = true`: the class renders the
   * proxy's request errors in its own protocol's shape. A JSON body that does not parse, or is nested
   * deeper than the proxy accepts, reaches handleHttp as text with `bodyError` set; a missing or refused
   * key arrives as `authError` (the class must refuse the request). Otherwise (the default) the proxy
   * answers 400 / 401 / 403 itself.
   */
  handlesMalformedJson?: boolean;
  /**
   * Per deployment, the methods its class lists in `static internalMethods`: callable by the app's other
   * deployments through handles, refused (404, as an unknown method) to a proxy's client. `methods` above
   * leaves the ingress's out. Absent when no deployment has any.
   */
  internalMethods?: Record<string, string[]>;
}

export interface CallOptions {
  requestId?: string;
  signal?: AbortSignal;
  /**
   * The runtime's own cancellation (actor/cancellation.ts): what the proxies pass, so that no
   * AbortSignal is built for a call nobody cancels. When given, it wins over `signal` (which callers
   * then define as a getter of `cancel.signal`). Default: none.
   */
  cancel?: Cancellation;
  timeoutMs?: number;
  /**
   * Calls with the same key go to the same replica while it has room and is not much busier than the
   * others (rendezvous hashing, router/prefix-aware-router.ts): sticky sessions, e.g. all rounds of one
   * speculative-decoding request. Default: none (power of two choices, or for a deployment with routing
   * 'prefix-aware' the key its class's static routingKey derives from the call, see DeploymentOptions.routing).
   */
  routingKey?: string;
  /**
   * The multiplexed model the call is for (Ray Serve's `multiplexed_model_id`): the router prefers a
   * replica that holds it, and the replica's `@multiplexed` loader reads it with getMultiplexedModelId()
   * (multiplexed.ts). The HTTP header `serve_multiplexed_model_id` (gRPC metadata of the same name, or
   * `multiplexed_model_id`) sets it at the proxies. Wins over routingKey. Default: none.
   */
  multiplexedModelId?: string;
}

/** What handleHttp(req) receives (plain data: it crosses to the replica). */
export interface HttpRequestLike {
  method: string;
  /** Path below the route prefix, always starting with '/'. */
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  /** Parsed JSON when the content type is JSON, else the raw text; undefined when empty. */
  body: unknown;
  /**
   * Why a body sent as JSON does not parse or is nested too deeply (then `body` is its raw text). Only for classes that declare
   * `static handlesMalformedJson = true`; for the others the proxy answers 400 before calling them.
   */
  bodyError?: string;
  requestId: string;
  /** The client's address as the proxy saw it (the TCP peer, or the gRPC peer for Serve.Call of handleHttp). */
  clientIp: string;
  /**
   * Who the proxy let in, when it has keys configured (ingress/ingress-keys.ts): set by the proxy only,
   * never taken from the client. Absent when the proxy has no keys (nothing was checked).
   */
  auth?: RequestAuth;
  /**
   * Why the proxy refused the request's key (missing, wrong, or a metrics key on an application route).
   * Only for classes that declare `static handlesMalformedJson = true`, which render the proxy's request
   * errors in their protocol's shape and must refuse the request with this message (401); for the others
   * the proxy answers 401/403 itself before calling them.
   */
  authError?: string;
}

/** The kinds of proxy keys (ingress/ingress-keys.ts). */
export type KeyRole = 'admin' | 'api' | 'metrics';

/** A request the proxy authenticated, and as what. Applications only ever see 'admin' or 'api' (metrics keys read monitoring routes only). */
export interface RequestAuth {
  role: KeyRole;
  /** `key-` + 12 hex digits of the key's SHA-256: safe to log, and a stable rate-limit key. */
  keyId: string;
}

/**
 * What handleHttp returns for a whole response. A streaming handleHttp is an async generator whose first
 * yield is an HttpResponseLike head (body ignored) and whose later yields are string chunks written as is.
 */
export interface HttpResponseLike {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /**
   * Only on a streaming head: how the proxy writes a failure that cuts the stream after this head, which
   * the replica cannot write itself (it died, or its node was lost). Default: 'sse' for a
   * text/event-stream head, else 'none'. See StreamErrorFormat.
   */
  streamErrorFormat?: StreamErrorFormat;
}

/**
 * The in-band error a proxy writes when a raw-HTTP stream fails after its head (ingress/stream-error-format.ts),
 * then it ends the response normally:
 * - 'openai-sse': `data: {"error":{"message","type","param":null,"code"}}` then `data: [DONE]` (OpenAI's
 *   clients throw an APIError on the error event);
 * - 'tgi-sse': `data: {"error":"...","error_type":"..."}` (text-generation-inference's stream error event);
 * - 'sse': `event: error` with core's `{"error":{"code","message"}}` (as core's own SSE streams);
 * - 'ndjson': core's `{"error":{"code","message"}}` as one more line;
 * - 'none': the connection is cut (for a body with no way to carry an error).
 */
export type StreamErrorFormat = 'openai-sse' | 'tgi-sse' | 'sse' | 'ndjson' | 'none';
