/**
 * Deployment-defined gRPC services: a .proto service whose RPCs map onto methods of a deployment. The
 * request message arrives as the method's single argument (a plain object, proto field names kept);
 * the method returns (or, for server-streaming RPCs, yields) plain objects of the reply type. A binding
 * with `passCallInfo: true` also hands the call's metadata and peer as a second argument (GrpcCallInfo),
 * as the HTTP proxy hands a raw-HTTP deployment the request's headers: e.g. `authorization` for API keys.
 *
 * ```ts
 * grpcProxy.addService({ protoPath: 'protos/llm.proto', service: 'flotilla.llm.v1.Llm', app: 'llm',
 *                        methods: { Generate: 'generate', GenerateStream: 'generateStream' } });
 * ```
 * or, declared by the deployment class itself and picked up by `serve run` (see `grpcServicesOf`):
 * ```ts
 * @deployment() class LLMServer { static grpcServices = [{ protoPath, service: 'flotilla.llm.v1.Llm' }]; ... }
 * ```
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { DeploymentConfigError, NotFoundError } from '../errors.js';
import { buildGraph, type Application } from '../application.js';
import { runStream, runUnary, type GrpcCallNeeds, type GrpcContext, type MutableLabels } from './grpc-call.js';
import type { RequestAuth } from '../contract/routes.js';

export interface GrpcServiceBinding {
  /** Path of the .proto file that defines the service. */
  protoPath: string;
  /** Fully qualified service name, e.g. 'flotilla.llm.v1.Llm'. */
  service: string;
  /** Application whose deployment serves the RPCs. */
  app: string;
  /** Deployment within the app. Default: the app's ingress deployment. */
  deployment?: string;
  /** RPC name → deployment method. Default: each RPC maps to its name with a lower-case first letter (Generate → generate). */
  methods?: Record<string, string>;
  /** Directories searched for the proto's imports. Default: the proto's own directory. */
  includeDirs?: string[];
  /** Call each method as `method(request, callInfo)`, callInfo a GrpcCallInfo. Default: false (the request only). */
  passCallInfo?: boolean;
  /**
   * A string field of the request messages that may carry the caller's key when the call has no
   * `authorization` metadata (e.g. llm.proto's 'api_key'); the proxy's key check reads it. Default: none.
   */
  keyField?: string;
}

/** The second argument of a method bound with `passCallInfo: true` (plain data: it crosses to the replica). */
export interface GrpcCallInfo {
  /**
   * The call's metadata by lower-case key, repeated keys joined with ', '. Text entries only: binary
   * (`-bin`) entries and grpc-js's own (`grpc-*`) are left out.
   */
  metadata: Record<string, string>;
  /** The client's address as grpc-js gives it, e.g. '127.0.0.1:50412' or '[::1]:50412'. */
  peer: string;
  /** Who the proxy let in, when it has keys (ingress-keys.ts); set by the proxy only. Absent without keys. */
  auth?: RequestAuth;
}

/** What a deployment class declares as `static grpcServices`: a binding without app and deployment. */
export type DeclaredGrpcService = Omit<GrpcServiceBinding, 'app' | 'deployment'>;

/**
 * The gRPC services the deployment classes of an application declare (`static grpcServices`), bound to it.
 * A service is served by one deployment: the declarer nearest the ingress (the graph's nodes come callers
 * first), so a guard or router in front of a model serves the model's proto itself, and an application with
 * two models declaring the same service (a hybrid router over two LLMServers) serves it once instead of
 * failing at start with grpc-js's "Method handler ... already provided".
 */
export function grpcServicesOf(appName: string, app: Application): GrpcServiceBinding[] {
  const bindings: GrpcServiceBinding[] = [];
  const served = new Set<string>();
  for (const node of buildGraph(appName, app).nodes) {
    const declared = (node.definition.cls as { grpcServices?: unknown }).grpcServices;
    if (declared === undefined) continue;
    if (!Array.isArray(declared)) {
      throw new DeploymentConfigError(
        `${node.name}.grpcServices must be an array of { protoPath, service, methods? }.`,
        { deployment: node.name },
      );
    }
    for (const d of declared as DeclaredGrpcService[]) {
      if (served.has(d.service)) continue;
      served.add(d.service);
      bindings.push({ ...d, app: appName, deployment: node.name });
    }
  }
  return bindings;
}

export function bindService(
  binding: GrpcServiceBinding,
  ctx: GrpcContext,
): {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
} {
  const packageDefinition = protoLoader.loadSync(binding.protoPath, {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: binding.includeDirs,
  });
  const definition = lookupService(grpc.loadPackageDefinition(packageDefinition), binding);
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const [rpc, spec] of Object.entries(definition)) {
    const method = binding.methods?.[rpc] ?? rpc.charAt(0).toLowerCase() + rpc.slice(1);
    if (spec.requestStream) {
      throw new DeploymentConfigError(
        `${binding.service}/${rpc} takes a client stream, which Flotilla does not map onto deployments; make the request unary.`,
      );
    }
    const argsOf = (
      call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>,
      auth: RequestAuth | undefined,
    ): unknown[] => (binding.passCallInfo ? [call.request, callInfoOf(call, auth)] : [call.request]);
    const field = binding.keyField;
    const needs: GrpcCallNeeds = field ? { keyInRequest: (request) => keyFieldOf(request, field) } : {};
    implementation[rpc] = spec.responseStream
      ? (call: grpc.ServerWritableStream<unknown, unknown>) =>
          void runStream(
            ctx,
            call,
            labelsFor(binding, rpc, method),
            (scope, auth) => handleFor(ctx, binding).remoteStream(method, argsOf(call, auth), scope.callOptions),
            (item) => item,
            needs,
          )
      : (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) =>
          void runUnary(
            ctx,
            call,
            cb,
            labelsFor(binding, rpc, method),
            (scope, auth) => handleFor(ctx, binding).remote(method, argsOf(call, auth), scope.callOptions),
            needs,
          );
  }
  return { definition, implementation };
}

function keyFieldOf(request: unknown, field: string): string | undefined {
  const value = (request as Record<string, unknown> | null | undefined)?.[field];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export function callInfoOf(call: { metadata: grpc.Metadata; getPeer(): string }, auth?: RequestAuth): GrpcCallInfo {
  const metadata: Record<string, string> = {};
  for (const [key, values] of Object.entries(call.metadata.getMap())) {
    if (key.endsWith('-bin') || key.startsWith('grpc-')) continue;
    // getMap() keeps the first value of a repeated key; get() has them all.
    const all = call.metadata.get(key).filter((v): v is string => typeof v === 'string');
    metadata[key] = all.length > 0 ? all.join(', ') : String(values);
  }
  const info: GrpcCallInfo = { metadata, peer: call.getPeer() };
  if (auth) info.auth = auth;
  return info;
}

function lookupService(pkg: grpc.GrpcObject, binding: GrpcServiceBinding): grpc.ServiceDefinition {
  let node: unknown = pkg;
  for (const part of binding.service.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  const service = (node as { service?: grpc.ServiceDefinition } | undefined)?.service;
  if (!service) {
    throw new DeploymentConfigError(
      `${binding.protoPath} defines no service '${binding.service}'; give the fully qualified name (package.Service).`,
    );
  }
  return service;
}

function handleFor(ctx: GrpcContext, binding: GrpcServiceBinding) {
  if (!ctx.target.routes().some((r) => r.app === binding.app)) {
    throw new NotFoundError(`Application '${binding.app}' serving ${binding.service} is not running.`);
  }
  return ctx.target.getHandle(binding.app, binding.deployment);
}

function labelsFor(binding: GrpcServiceBinding, rpc: string, method: string): MutableLabels {
  return { app: binding.app, deployment: binding.deployment ?? '', route: `/${binding.service}/${rpc}`, method };
}
