/**
 * A uniform random sample of the rows of an activation stream (Algorithm R), kept on the host, for
 * dead-feature resampling: after n rows it holds each of them with probability size/n, so the
 * trainer can draw "a random set of inputs" without reading the stream a second time. Its state
 * (rows, counts, RNG) checkpoints with the trainer.
 *
 * Shape key: B batch rows, N reservoir rows, D input width.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Rng, type RngState } from "../run/mod.ts";

export interface ReservoirState {
  data: Float32Array;
  filled: number;
  seen: number;
  rng: RngState;
}

export class Reservoir {
  readonly size: number;
  readonly dIn: number;
  #data: Float32Array;
  #filled = 0;
  #seen = 0;
  #rng: Rng;

  constructor(size: number, dIn: number, seed: number) {
    this.size = size;
    this.dIn = dIn;
    this.#data = new Float32Array(size * dIn);
    this.#rng = new Rng(seed);
  }

  get filled(): number {
    return this.#filled;
  }

  /** Offers every row of xBD; copies to the host only the rows that win a slot. */
  async add(xBD: tf.Tensor2D): Promise<void> {
    const N = this.size, D = this.dIn;
    const rowOfSlot = new Map<number, number>();
    for (let j = 0; j < xBD.shape[0]; j++) {
      const t = this.#seen + j;
      const slot = t < N ? t : this.#rng.int(t + 1);
      if (slot < N) rowOfSlot.set(slot, j); // a later row taking the same slot replaces it
    }
    this.#seen += xBD.shape[0];
    this.#filled = Math.min(N, this.#seen);
    if (rowOfSlot.size === 0) return;
    const slots = [...rowOfSlot.keys()];
    const rows = tf.gather(xBD, slots.map((s) => rowOfSlot.get(s)!));
    const data = (await rows.data()) as Float32Array;
    rows.dispose();
    slots.forEach((s, i) => this.#data.set(data.subarray(i * D, (i + 1) * D), s * D));
  }

  /** The rows held so far as a new [N, D] tensor (the caller disposes it). */
  toTensor(): tf.Tensor2D {
    return tf.tensor2d(this.#data.subarray(0, this.#filled * this.dIn), [this.#filled, this.dIn]);
  }

  state(): ReservoirState {
    return {
      data: Float32Array.from(this.#data.subarray(0, this.#filled * this.dIn)),
      filled: this.#filled,
      seen: this.#seen,
      rng: this.#rng.state(),
    };
  }

  load(state: ReservoirState): void {
    if (state.filled > this.size || state.data.length !== state.filled * this.dIn) {
      throw new Error(
        `Reservoir checkpoint holds ${state.filled} rows (${state.data.length} values), ` +
          `expected at most ${this.size} rows of width ${this.dIn}`,
      );
    }
    this.#data.fill(0);
    this.#data.set(state.data);
    this.#filled = state.filled;
    this.#seen = state.seen;
    this.#rng.load(state.rng);
  }
}
