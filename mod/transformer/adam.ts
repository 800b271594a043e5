/**
 * Adam(W) with its moments in plain named variables, so that a trainer can checkpoint them and
 * reset single rows of them (the SAE's dead-feature resampling resets the moments of every row it
 * touches).
 *
 * Usage:
 *   const opt = new Adam({ w: wVar, b: bVar }, { lr: 1e-3 });
 *   const { grads } = tf.variableGrads(lossFn, [wVar, bVar]);   // keyed by variable name
 *   opt.step({ w: grads[wVar.name], b: grads[bVar.name] });
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay (AdamW), applied to the parameters named in `decay` only. */
  weightDecay?: number;
  /** Names of parameters that get weight decay (default: none). */
  decay?: string[];
}

/** The optimiser state as plain arrays, for checkpoints. */
export interface AdamState {
  t: number;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
}

export class Adam {
  readonly params: Record<string, tf.Variable>;
  readonly m: Record<string, tf.Variable> = {};
  readonly v: Record<string, tf.Variable> = {};
  t = 0;
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly decay: Set<string>;

  constructor(params: Record<string, tf.Variable>, opts: AdamOptions) {
    this.params = params;
    this.lr = opts.lr;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    this.decay = new Set(opts.decay ?? []);
    for (const [name, p] of Object.entries(params)) {
      this.m[name] = tf.variable(tf.zerosLike(p), false);
      this.v[name] = tf.variable(tf.zerosLike(p), false);
    }
  }

  /**
   * One update. `grads` maps parameter names to gradients (missing names are left alone); the
   * caller still owns the gradient tensors and disposes them. `lr` overrides the stored rate for
   * this step (schedules).
   */
  step(grads: Record<string, tf.Tensor>, lr = this.lr): void {
    const { beta1, beta2, eps } = this;
    const stepSize = this.nextStepSize(lr);
    tf.tidy(() => {
      for (const [name, g] of Object.entries(grads)) {
        const p = this.params[name];
        if (!p) throw new Error(`Adam.step: unknown parameter "${name}"`);
        const m = this.m[name], v = this.v[name];
        const mNew = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const vNew = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        m.assign(mNew);
        v.assign(vNew);
        let pNew = tf.sub(p, tf.mul(tf.div(mNew, tf.add(tf.sqrt(vNew), eps)), stepSize));
        if (this.weightDecay > 0 && this.decay.has(name)) {
          pNew = tf.sub(pNew, tf.mul(p, lr * this.weightDecay));
        }
        p.assign(pNew);
      }
    });
  }

  /**
   * Advances t by one and returns the step size at `lr`: the bias corrections folded in, as in the
   * Adam paper's "efficient" form. For native kernels that apply the update themselves.
   */
  nextStepSize(lr = this.lr): number {
    this.t += 1;
    return lr * Math.sqrt(1 - this.beta2 ** this.t) / (1 - this.beta1 ** this.t);
  }

  /**
   * Zeroes the moments of the given indices along `axis` of parameter `name` (rows for axis 0,
   * columns for axis 1 of a matrix; entries of a vector).
   */
  resetMoments(name: string, indices: number[], axis = 0): void {
    if (indices.length === 0) return;
    const p = this.params[name];
    if (!p) throw new Error(`Adam.resetMoments: unknown parameter "${name}"`);
    const size = p.shape[axis];
    const keep = new Float32Array(size).fill(1);
    for (const i of indices) {
      if (i < 0 || i >= size) {
        throw new Error(`Adam.resetMoments: index ${i} out of range for "${name}" axis ${axis}`);
      }
      keep[i] = 0;
    }
    tf.tidy(() => {
      const shape = p.shape.map((_, d) => (d === axis ? size : 1));
      const mask = tf.tensor(keep, shape);
      this.m[name].assign(tf.mul(this.m[name], mask));
      this.v[name].assign(tf.mul(this.v[name], mask));
    });
  }

  async state(): Promise<AdamState> {
    const m: Record<string, Float32Array> = {}, v: Record<string, Float32Array> = {};
    for (const name of Object.keys(this.params)) {
      m[name] = (await this.m[name].data()) as Float32Array;
      v[name] = (await this.v[name].data()) as Float32Array;
    }
    return { t: this.t, m, v };
  }

  load(state: AdamState): void {
    this.t = state.t;
    for (const name of Object.keys(this.params)) {
      const shape = this.params[name].shape;
      for (const [key, store] of [["m", this.m], ["v", this.v]] as const) {
        const values = state[key][name];
        if (!values || values.length !== this.params[name].size) {
          throw new Error(`Adam state for "${name}" (${key}) is missing or has the wrong size`);
        }
        tf.tidy(() => store[name].assign(tf.tensor(values, shape)));
      }
    }
  }

  dispose(): void {
    for (const name of Object.keys(this.params)) {
      this.m[name].dispose();
      this.v[name].dispose();
    }
  }
}
