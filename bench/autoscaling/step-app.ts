// The deployment the autoscaling bench loads: each call holds a slot for `ms`; 2 slots per replica.
import { deployment } from '../../packages/core/src/deployment.js';

@deployment({
  maxOngoingRequests: 2,
  autoscaling: {
    minReplicas: 1,
    maxReplicas: 4,
    initialReplicas: 1,
    targetOngoingRequests: 2,
    upscaleDelayS: 2,
    downscaleDelayS: 600,
    metricsIntervalS: 1,
  },
})
export class StepWorker {
  async work(ms: number) {
    await new Promise((r) => setTimeout(r, ms));
    return 'ok';
  }
}

export const stepApp = StepWorker.bind();
