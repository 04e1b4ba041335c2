/**
 * Adam (Kingma & Ba) with bias correction over a fixed list of tensors, updating them in place from
 * their gradients. Moments are float64 whatever the tensors' type.
 */
import type { Floats } from './ops.js';

export interface AdamOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export class Adam {
  private readonly m: Float64Array[];
  private readonly v: Float64Array[];
  private t = 0;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;

  constructor(
    private readonly params: { value: Floats; grad: Floats }[],
    o: AdamOptions = {},
  ) {
    this.m = params.map((p) => new Float64Array(p.value.length));
    this.v = params.map((p) => new Float64Array(p.value.length));
    this.beta1 = o.beta1 ?? 0.9;
    this.beta2 = o.beta2 ?? 0.999;
    this.eps = o.eps ?? 1e-8;
  }

  step(lr: number): void {
    this.t++;
    const { beta1: b1, beta2: b2, eps } = this;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    this.params.forEach(({ value, grad }, j) => {
      const m = this.m[j]!;
      const v = this.v[j]!;
      for (let i = 0; i < value.length; i++) {
        const g = grad[i]!;
        m[i] = b1 * m[i]! + (1 - b1) * g;
        v[i] = b2 * v[i]! + (1 - b2) * g * g;
        value[i] = value[i]! - (lr * (m[i]! / c1)) / (Math.sqrt(v[i]! / c2) + eps);
      }
    });
  }
}
