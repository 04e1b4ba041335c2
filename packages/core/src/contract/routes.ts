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
   * True when the raw-HTTP class declares `static handlesMalformedJson = true`: a JSON body that does not
   * parse reaches handleHttp as text with `bodyError` set, so the class answers in its own protocol's shape.
   * Otherwise (the default) the proxy answers 400 itself.
   */
  handlesMalformedJson?: boolean;
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
   * speculative-decoding request. Default: none (power of two choices, or the prompt prefix for a
   * deployment with routing 'prefix-aware').
   */
  routingKey?: string;
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
   * Why a body sent as JSON does not parse (then `body` is its raw text). Only for classes that declare
   * `static handlesMalformedJson = true`; for the others the proxy answers 400 before calling them.
   */
  bodyError?: string;
  requestId: string;
  clientIp: string;
}

/**
 * What handleHttp returns for a whole response. A streaming handleHttp is an async generator whose first
 * yield is an HttpResponseLike head (body ignored) and whose later yields are string chunks written as is.
 */
export interface HttpResponseLike {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}
