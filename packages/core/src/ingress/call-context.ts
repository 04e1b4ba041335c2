/** What the HTTP proxy hands each handler for one request (http-dispatch.ts builds it; http-raw.ts and the method dispatch use it). */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DeploymentHandle } from '../handle.js';
import type { RouteInfo } from '../contract/routes.js';
import type { IngressTarget } from './ingress-target.js';
import type { RequestScope } from './request-scope.js';

/** Everything a handler needs for one request. */
export interface CallContext {
  request: FastifyRequest;
  reply: FastifyReply;
  target: IngressTarget;
  route: RouteInfo;
  rest: string;
  scope: RequestScope;
  /** The ingress deployment's handle. */
  handle: DeploymentHandle;
}
