/**
 * A two-tier app for a cluster: a CPU front end on the head and a worker that asks for a GPU, so it is
 * placed on a node agent that offers one (the code itself runs anywhere; it only reports where it is).
 *
 *   serve run examples/cluster.ts:app --cluster-port 9100                         # the head (waits for a GPU node)
 *   serve agent --address 127.0.0.1:9100 --gpus 1 --node-id gpu-1                  # a node agent, same checkout
 *   curl -s localhost:8000/ -d '"hello"'                                            # served by the GPU worker
 *   curl -sN localhost:8000/count -H 'accept: text/event-stream' -d '[5, 100]'      # streamed through both
 *   serve build examples/cluster.ts:app --out k8s/                                  # Kubernetes manifests
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { deployment, type DeploymentHandle } from '@flotilla/core';

@deployment({
  resources: { gpus: 1 },
  placement: 'process',
  autoscaling: { minReplicas: 1, maxReplicas: 4, targetOngoingRequests: 4 },
})
export class GpuWorker {
  /** Where this replica runs: its node (set by the agent), pid and GPU. */
  where() {
    return {
      node: process.env.FLOTILLA_NODE_ID ?? 'local',
      pid: process.pid,
      cuda: process.env.CUDA_VISIBLE_DEVICES ?? '',
    };
  }

  echo(text: string) {
    return { text, ...this.where() };
  }

  async *count(n: number, delayMs = 50) {
    for (let i = 0; i < n; i++) {
      yield { i, node: process.env.FLOTILLA_NODE_ID ?? 'local' };
      await sleep(delayMs);
    }
  }

  async slow(ms: number) {
    await sleep(ms);
    return this.where();
  }
}

@deployment()
export class Front {
  constructor(private readonly worker: DeploymentHandle<GpuWorker>) {}

  /** POST / "text": echoed by the GPU worker. */
  async __call__(text: string) {
    return this.worker.echo(String(text));
  }

  async *count(n: number, delayMs = 50) {
    yield* this.worker.stream.count(n, delayMs);
  }
}

export const app = Front.bind(GpuWorker.bind());
