/** The deployments the core benchmark measures: a no-op in a worker thread and one in a child process. */
import { deployment } from '@flotilla/core';

@deployment({ placement: 'thread', maxOngoingRequests: 256 })
export class NoopThread {
  noop(x: unknown) {
    return x;
  }
}

@deployment({ placement: 'process', maxOngoingRequests: 256 })
export class NoopProcess {
  noop(x: unknown) {
    return x;
  }
}

export const threadApp = NoopThread.bind();
export const processApp = NoopProcess.bind();
