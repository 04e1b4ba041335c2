/**
 * The Llama building blocks with their hand-written backward passes, on row-major matrices of T rows
 * (one row per position). Sums are taken in double (JS numbers) whatever the array type, so a
 * Float64Array model gives gradients exact enough for a finite-difference check and a Float32Array
 * model trains at f32 memory cost. Base weights are frozen: backward passes return input gradients
 * only, except the LoRA matrices, whose gradients are accumulated into their `ga` / `gb`.
 */

export type Floats = Float32Array | Float64Array;
export type FloatsCtor = Float32ArrayConstructor | Float64ArrayConstructor;

/** One LoRA pair on a linear site: y += scale · B (A x); A is (r, in), B (out, r), row-major. */
export interface LoraPair {
  r: number;
  scale: number;
  a: Floats;
  b: Floats;
  ga: Floats;
  gb: Floats;
}

/** y (T×out) = x (T×in) Wᵀ [+ s·(x Aᵀ) Bᵀ]; z (T×r) = x Aᵀ is what backward needs. */
export function linear(
  Arr: FloatsCtor,
  x: Floats,
  T: number,
  inDim: number,
  w: Floats,
  outDim: number,
  lora?: LoraPair,
): { y: Floats; z?: Floats } {
  const y = new Arr(T * outDim);
  // Four output rows per pass over x's row: each x value loaded once for four products.
  const o4 = outDim - (outDim % 4);
  for (let t = 0; t < T; t++) {
    const xo = t * inDim;
    const yo = t * outDim;
    for (let o = 0; o < o4; o += 4) {
      const w0 = o * inDim;
      const w1 = w0 + inDim;
      const w2 = w1 + inDim;
      const w3 = w2 + inDim;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let i = 0; i < inDim; i++) {
        const xv = x[xo + i]!;
        s0 += xv * w[w0 + i]!;
        s1 += xv * w[w1 + i]!;
        s2 += xv * w[w2 + i]!;
        s3 += xv * w[w3 + i]!;
      }
      y[yo + o] = s0;
      y[yo + o + 1] = s1;
      y[yo + o + 2] = s2;
      y[yo + o + 3] = s3;
    }
    for (let o = o4; o < outDim; o++) {
      const wo = o * inDim;
      let s = 0;
      for (let i = 0; i < inDim; i++) s += x[xo + i]! * w[wo + i]!;
      y[yo + o] = s;
    }
  }
  if (!lora) return { y };
  const { r, a, b, scale } = lora;
  const z = new Arr(T * r);
  for (let t = 0; t < T; t++) {
    const xo = t * inDim;
    for (let k = 0; k < r; k++) {
      const ao = k * inDim;
      let s = 0;
      for (let i = 0; i < inDim; i++) s += x[xo + i]! * a[ao + i]!;
      z[t * r + k] = s;
    }
    for (let o = 0; o < outDim; o++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += b[o * r + k]! * z[t * r + k]!;
      y[t * outDim + o] = y[t * outDim + o]! + scale * s;
    }
  }
  return { y, z };
}

/**
 * Backward of linear(): returns dx (T×in), adds dy·W and, with LoRA, dz = s·dy·B, dx += dz·A,
 * gB += s·dyᵀ z, gA += dzᵀ x. `into` accumulates dx into an existing array instead.
 */
export function linearBack(
  Arr: FloatsCtor,
  dy: Floats,
  x: Floats,
  T: number,
  inDim: number,
  w: Floats,
  outDim: number,
  lora?: LoraPair,
  z?: Floats,
  into?: Floats,
): Floats {
  const dx = into ?? new Arr(T * inDim);
  // Four rows of W per pass over dx's row: each dx value loaded and stored once for four products.
  const o4 = outDim - (outDim % 4);
  for (let t = 0; t < T; t++) {
    const xo = t * inDim;
    const yo = t * outDim;
    for (let o = 0; o < o4; o += 4) {
      const g0 = dy[yo + o]!;
      const g1 = dy[yo + o + 1]!;
      const g2 = dy[yo + o + 2]!;
      const g3 = dy[yo + o + 3]!;
      const w0 = o * inDim;
      const w1 = w0 + inDim;
      const w2 = w1 + inDim;
      const w3 = w2 + inDim;
      for (let i = 0; i < inDim; i++) {
        dx[xo + i] = dx[xo + i]! + g0 * w[w0 + i]! + g1 * w[w1 + i]! + g2 * w[w2 + i]! + g3 * w[w3 + i]!;
      }
    }
    for (let o = o4; o < outDim; o++) {
      const g = dy[yo + o]!;
      const wo = o * inDim;
      for (let i = 0; i < inDim; i++) dx[xo + i] = dx[xo + i]! + g * w[wo + i]!;
    }
  }
  if (!lora || !z) return dx;
  const { r, a, b, ga, gb, scale } = lora;
  const dz = new Float64Array(r);
  for (let t = 0; t < T; t++) {
    dz.fill(0);
    for (let o = 0; o < outDim; o++) {
      const g = scale * dy[t * outDim + o]!;
      for (let k = 0; k < r; k++) {
        dz[k] = dz[k]! + g * b[o * r + k]!;
        gb[o * r + k] = gb[o * r + k]! + g * z[t * r + k]!;
      }
    }
    const xo = t * inDim;
    for (let k = 0; k < r; k++) {
      const d = dz[k]!;
      const ao = k * inDim;
      for (let i = 0; i < inDim; i++) {
        dx[xo + i] = dx[xo + i]! + d * a[ao + i]!;
        ga[ao + i] = ga[ao + i]! + d * x[xo + i]!;
      }
    }
  }
  return dx;
}

/** RMSNorm per row: y = x · rs · g with rs = 1/sqrt(mean(x²) + eps); returns rs per row for backward. */
export function rmsnorm(
  Arr: FloatsCtor,
  x: Floats,
  T: number,
  D: number,
  g: Floats,
  eps: number,
): { y: Floats; rs: Float64Array } {
  const y = new Arr(T * D);
  const rs = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let i = 0; i < D; i++) ss += x[t * D + i]! ** 2;
    const r = 1 / Math.sqrt(ss / D + eps);
    rs[t] = r;
    for (let i = 0; i < D; i++) y[t * D + i] = x[t * D + i]! * r * g[i]!;
  }
  return { y, rs };
}

/** dx = rs·(g⊙dy) − rs³/D · x · Σ(g⊙dy⊙x), added to `into`. */
export function rmsnormBack(
  dy: Floats,
  x: Floats,
  rs: Float64Array,
  T: number,
  D: number,
  g: Floats,
  into: Floats,
): void {
  for (let t = 0; t < T; t++) {
    const r = rs[t]!;
    let dot = 0;
    for (let i = 0; i < D; i++) dot += g[i]! * dy[t * D + i]! * x[t * D + i]!;
    const c = (r * r * r * dot) / D;
    for (let i = 0; i < D; i++) into[t * D + i] = into[t * D + i]! + r * g[i]! * dy[t * D + i]! - c * x[t * D + i]!;
  }
}

/** cos/sin of position p and pair i (angle p·θ^(−2i/hd)), [T][hd/2]. */
export function ropeTables(T: number, hd: number, theta: number): { cos: Float64Array; sin: Float64Array } {
  const h2 = hd / 2;
  const cos = new Float64Array(T * h2);
  const sin = new Float64Array(T * h2);
  for (let p = 0; p < T; p++) {
    for (let i = 0; i < h2; i++) {
      const ang = p * theta ** ((-2 * i) / hd);
      cos[p * h2 + i] = Math.cos(ang);
      sin[p * h2 + i] = Math.sin(ang);
    }
  }
  return { cos, sin };
}

/**
 * Rotates each head of each row in place, Hugging Face's half-split layout: pair (i, i + hd/2).
 * `inverse` applies the transpose (the backward pass of the rotation).
 */
export function rope(
  v: Floats,
  T: number,
  nHeads: number,
  hd: number,
  tab: { cos: Float64Array; sin: Float64Array },
  inverse = false,
): void {
  const h2 = hd / 2;
  const sign = inverse ? -1 : 1;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < nHeads; h++) {
      const o = (t * nHeads + h) * hd;
      for (let i = 0; i < h2; i++) {
        const c = tab.cos[t * h2 + i]!;
        const s = sign * tab.sin[t * h2 + i]!;
        const a = v[o + i]!;
        const b = v[o + i + h2]!;
        v[o + i] = a * c - b * s;
        v[o + i + h2] = b * c + a * s;
      }
    }
  }
}

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** d silu / dx = σ(x)(1 + x(1 − σ(x))). */
export function siluGrad(x: number): number {
  const s = 1 / (1 + Math.exp(-x));
  return s * (1 + x * (1 - s));
}

/** A new array of n values drawn from `f` in order. */
export function filled(Arr: FloatsCtor, n: number, f: () => number): Floats {
  const a = new Arr(n);
  for (let i = 0; i < n; i++) a[i] = f();
  return a;
}
