/** @flotilla/core: deployments as actors, handles, routers, the controller and the ingress contract. */
export { deployment, getDeploymentDefinition } from './deployment.js';
export { Application, buildGraph, isApplication } from './application.js';
export type { AppBuilder, Bindable, AppGraph, GraphNode } from './application.js';
export { batch } from './batch.js';
export type { BatchOptions } from './batch.js';
export type { DeploymentHandle, HandleBase, UnaryMethods, StreamMethods, HandleDescriptor } from './handle.js';
export { getRequestContext, getReplicaContext } from './request-context.js';
export type { RequestContext, ReplicaContext } from './request-context.js';
export { multiplexed } from './multiplexed.js';
export type { MultiplexedOptions } from './multiplexed.js';
export { getMultiplexedModelId } from './request-context.js';
export { MULTIPLEXED_MODEL_HEADER } from './ingress/multiplex-header.js';
export { parseServeConfig, loadServeConfig, resolveDeploymentOptions, validateDeploymentOptions } from './config.js';
export type { ServeConfig, ApplicationConfig, DeploymentConfigEntry } from './config.js';
export { ServeInstance, startServe, serve } from './serve-instance.js';
export type { StartServeOptions, ApplicationSpec, RunOptions, ApplyOptions } from './serve-instance.js';
export { RuntimeEvents } from './runtime-events.js';
export type {
  RuntimeEventMap,
  RequestEvent,
  ReplicaStateEvent,
  DeploymentStatusEvent,
  BatchEvent,
  DeploymentStats,
  ScalingDecisionEvent,
} from './runtime-events.js';
export {
  defaultAutoscalingPolicy,
  llmAutoscalingPolicy,
  applyDelays,
  rayDesiredReplicas,
  clampReplicas,
  LLM_METRICS,
} from './controller/autoscaling-policy.js';
export type { LlmPolicyOptions } from './controller/autoscaling-policy.js';
export { CostLedger, USAGE_METRICS, tokenCostUsd } from './controller/cost-ledger.js';
export type { CostTotals, ReplicaUsage } from './controller/cost-ledger.js';
export type { NodeResources } from './controller/placement.js';
export * from './errors.js';
// The shared vocabulary (contract/): call, route, status, option and autoscaling types.
export type * from './contract/routes.js';
export type * from './contract/status.js';
export type * from './contract/autoscaling.js';
export type * from './contract/deployment-options.js';
export type { IngressTarget } from './ingress/ingress-target.js';
export { HttpProxy, HTTP_DEFAULTS } from './ingress/http-proxy.js';
export type { HttpProxyOptions } from './ingress/http-proxy.js';
export { GrpcProxy, GRPC_DEFAULTS, SERVE_PROTO_PATH } from './ingress/grpc-proxy.js';
export type { GrpcProxyOptions } from './ingress/grpc-proxy.js';
export type { GrpcServiceBinding, GrpcCallInfo } from './ingress/grpc-services.js';
export { KeyRing } from './ingress/ingress-keys.js';
export type { IngressKeys, Access } from './ingress/ingress-keys.js';
export { readKeyFile } from './ingress/key-file.js';
export { declaredKeysOf } from './ingress/declared-keys.js';
export type { TlsOptions } from './ingress/tls.js';
export type { HttpConnectionLimits } from './ingress/http-server-options.js';
export { Ingress } from './ingress/ingress.js';
export type { IngressOptions } from './ingress/ingress.js';
export { FlotillaMetrics, METRICS_NAMESPACE } from './observability/metrics.js';
export { Progress, modelLoadProgress, renderProgress } from './cli/progress.js';
export { CliError, causeOf } from './cli/cli-error.js';
export type { CliPlugin } from './cli/serve.js';
export type { ProgressOptions } from './cli/progress.js';
export type { MetricsOptions, RequestLabels } from './observability/metrics.js';
export { ClusterHead } from './cluster/head.js';
export type { ClusterHeadOptions } from './cluster/head.js';
export { ClusterAgent } from './cluster/agent.js';
export type { ClusterAgentOptions } from './cluster/agent.js';
export type { PlacementStrategy } from './cluster/cluster-placement.js';
export type { ClusterClientTls, ClusterServerTls } from './cluster/cluster-tls.js';
export { pinnedReplicaKey } from './router/prefix-aware-router.js';
export { transfer } from './actor/transfer.js';
