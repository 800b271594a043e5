/**
 * Custom-gradient ops for the one-layer transformer (mod/transformer/transformer.ts):
 *
 * - `embedLookup`: an embedding gather whose gradient is a scatter-add (tf.scatterND sums
 *   duplicate indices), because tf.gather's own gradient needs UnsortedSegmentSum, which the wasm
 *   backend lacks.
 * - `fusedCrossEntropy`: unembedding + softmax cross-entropy over a 50257-wide vocabulary with its
 *   own gradient, one chunk of rows (tokens) at a time. The plain path builds the [N, V] logits and
 *   then about a dozen more [N, V] tensors (log-softmax, one-hot, their gradients); this one keeps
 *   at most one [N, V] matrix (each chunk's exp(logit - row max), in "store" mode) or none
 *   ("recompute" mode: the backward pass recomputes each chunk's probabilities, one more matmul).
 *   The bias rides in the matmul as an extra row of W_U against a column of ones (in "recompute"
 *   mode the subtraction of the log-sum-exp too), the softmax's row scales are folded into the
 *   small operands, and the one-hot part of the gradient is a sparse gather / scatter, so that a
 *   chunk costs its matmuls plus the max / exp / sum of the forward pass.
 *   Why rows and not vocabulary chunks with an online log-sum-exp: every chunk then sees the whole
 *   vocabulary (an exact log-sum-exp, nothing to combine), and W_U is never sliced; on the wasm
 *   backend a Slice copies its whole input first, so seven column slices of the 25 MB W_U cost
 *   more than the matmuls they feed. Every matmul is issued without transpose flags (explicit
 *   tf.transpose of the small operand): the shipped wasm BatchMatMul is 10-40x slower with them.
 *   Where the wasm backend runs with OpenBLAS and the native library is built, both go to the
 *   native kernel instead (native_ce.ts: the same chunks and modes, the elementwise work threaded
 *   and vectorised in C, dL/dlogits formed in place); `kernel: "tfjs"` keeps the path above.
 * - `plainCrossEntropy`: the obviously-correct reference (tests and benchmark baseline).
 * - `chunkedTokenLosses`: per-token losses in chunks, without gradients (evaluation).
 *
 * Shape key: N tokens (rows), R rows of one chunk, D model width, V vocabulary, A = D + 1 (width
 * with the ones column).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type NativeCe, nativeCe } from "./native_ce.ts";

export interface FusedCeOptions {
  /**
   * "native": the C kernel (native_ce.ts), an error where it cannot run; "tfjs": the tfjs ops
   * below; "auto" (default): native where it can run, else tfjs.
   */
  kernel?: "auto" | "native" | "tfjs";
  /** Rows (tokens) per chunk; default: as many as fit `chunkBytes` of logits. */
  rowChunk?: number;
  /** Size of one chunk's [R, V] logits when `rowChunk` is not given (default 64 MiB). */
  chunkBytes?: number;
  /**
   * "store" keeps each chunk's exp(logit - row max) from the forward pass (one [N, V] matrix,
   * three matmuls in all); "recompute" keeps nothing and recomputes them in the backward pass
   * (four matmuls). Default: "store" while N * V * 4 bytes stays under `maxStoreBytes`.
   */
  mode?: "store" | "recompute";
  /** Memory budget for "store" mode when `mode` is not given (default 512 MiB). */
  maxStoreBytes?: number;
}

/** Embedding rows for `tokN` (int32 ids), differentiable in `wVD` on every backend. */
export function embedLookup(tokN: tf.Tensor1D, wVD: tf.Tensor2D): tf.Tensor2D {
  const op = tf.customGrad((w, save) => {
    (save as tf.GradSaveFunc)([tokN]);
    return {
      value: tf.gather(w as tf.Tensor2D, tokN),
      gradFunc: (dyND, saved) => {
        const tok = saved[0];
        return tf.scatterND(tf.reshape(tok, [tok.size, 1]), dyND, (w as tf.Tensor).shape);
      },
    };
  });
  return op(wVD) as tf.Tensor2D;
}

/** Mean next-token cross-entropy the textbook way: full logits, log-softmax, one-hot. */
export function plainCrossEntropy(
  xND: tf.Tensor2D,
  wUDV: tf.Tensor2D,
  bUV: tf.Tensor1D,
  targetsN: tf.Tensor1D,
): tf.Scalar {
  return tf.tidy(() => {
    const logpNV = tf.logSoftmax(tf.add(tf.matMul(xND, wUDV), bUV));
    // oneHot can come back as int32 (and, on wasm, garbage in float paths): cast explicitly.
    const yNV = tf.cast(tf.oneHot(targetsN, wUDV.shape[1]), "float32");
    return tf.neg(tf.mean(tf.sum(tf.mul(logpNV, yNV), 1)));
  });
}

function checkShapes(xND: tf.Tensor, wUDV: tf.Tensor, bUV: tf.Tensor, targetsN: tf.Tensor) {
  const [n, d] = xND.shape, [dw, v] = wUDV.shape;
  if (d !== dw) throw new Error(`Cross-entropy input width ${d} does not match W_U rows ${dw}`);
  if (bUV.shape[0] !== v) throw new Error(`b_U length ${bUV.shape[0]} does not match vocab ${v}`);
  if (targetsN.shape[0] !== n) {
    throw new Error(`Cross-entropy has ${targetsN.shape[0]} targets for ${n} rows`);
  }
  if (targetsN.dtype !== "int32") throw new Error(`Targets must be int32, got ${targetsN.dtype}`);
}

/** Row (token) chunks of balanced size, each at most `rowChunk` rows or `chunkBytes` of logits. */
function rowChunks(n: number, v: number, opts: FusedCeOptions): { start: number; size: number }[] {
  const max = opts.rowChunk ?? Math.max(1, Math.floor((opts.chunkBytes ?? 64 * 2 ** 20) / (4 * v)));
  if (!Number.isInteger(max) || max < 1) throw new Error(`CE rowChunk ${max} is not >= 1`);
  const count = Math.ceil(n / max), size = Math.ceil(n / count), out = [];
  for (let start = 0; start < n; start += size) {
    out.push({ start, size: Math.min(size, n - start) });
  }
  return out;
}

/** The native kernel when `opts.kernel` allows it and it can run, else null. */
function nativeKernel(opts: FusedCeOptions): NativeCe | null {
  const kernel = opts.kernel ?? "auto";
  if (kernel === "tfjs") return null;
  const r = nativeCe();
  if (!r.ce && kernel === "native") {
    throw new Error(`Native cross-entropy unavailable: ${r.reason}`);
  }
  return r.ce;
}

function rows<T extends tf.Tensor>(t: T, start: number, size: number): T {
  return tf.slice(t, [start, 0], [size, t.shape[1]!]) as T;
}

/** Log-sum-exp [R, 1] of one row chunk's logits, and exp(logits - row max) with 1 / its sum. */
function chunkSoftmax(xAugRA: tf.Tensor2D, wAugAV: tf.Tensor2D) {
  const lRV = tf.matMul(xAugRA, wAugAV);
  const mR1 = tf.max(lRV, 1, true);
  const eRV = tf.exp(tf.sub(lRV, mR1));
  const sR1 = tf.sum(eRV, 1, true);
  return {
    lseR1: tf.add(mR1, tf.log(sR1)) as tf.Tensor2D,
    eRV: eRV as tf.Tensor2D,
    invSumR1: tf.reciprocal(sR1) as tf.Tensor2D,
  };
}

/** x @ W_U[:, t] + b_U[t] for each row's target t: [N]. */
function targetLogits(
  xND: tf.Tensor2D,
  wUVD: tf.Tensor2D,
  bUV: tf.Tensor1D,
  targetsN: tf.Tensor1D,
) {
  return tf.add(tf.sum(tf.mul(xND, tf.gather(wUVD, targetsN)), 1), tf.gather(bUV, targetsN));
}

function withOnes(xND: tf.Tensor2D): tf.Tensor2D {
  return tf.concat([xND, tf.ones([xND.shape[0], 1])], 1);
}

function withBiasRow(wUDV: tf.Tensor2D, bUV: tf.Tensor1D): tf.Tensor2D {
  return tf.concat([wUDV, tf.reshape(bUV, [1, bUV.shape[0]])], 0);
}

/** Per-token cross-entropy [N], chunked over rows, without gradients (evaluation). */
export function chunkedTokenLosses(
  xND: tf.Tensor2D,
  wUDV: tf.Tensor2D,
  bUV: tf.Tensor1D,
  targetsN: tf.Tensor1D,
  opts: FusedCeOptions = {},
): tf.Tensor1D {
  checkShapes(xND, wUDV, bUV, targetsN);
  const [n, v] = [xND.shape[0], wUDV.shape[1]];
  const native = nativeKernel(opts);
  if (native) {
    return native.tokenLosses(xND, wUDV, bUV, targetsN, rowChunks(n, v, opts)[0]?.size ?? 1);
  }
  return tf.tidy(() => {
    const xAugNA = withOnes(xND), wAugAV = withBiasRow(wUDV, bUV);
    const parts = rowChunks(n, v, opts).map(({ start, size }) =>
      tf.tidy(() => chunkSoftmax(rows(xAugNA, start, size), wAugAV).lseR1)
    );
    const lseN = tf.reshape(tf.concat(parts, 0), [n]);
    return tf.sub(lseN, targetLogits(xND, tf.transpose(wUDV), bUV, targetsN));
  });
}

/**
 * Mean cross-entropy of softmax(x @ W_U + b_U) against `targetsN`, differentiable in x, W_U and
 * b_U, computed one chunk of rows at a time (see the module comment).
 */
export function fusedCrossEntropy(
  xND: tf.Tensor2D,
  wUDV: tf.Tensor2D,
  bUV: tf.Tensor1D,
  targetsN: tf.Tensor1D,
  opts: FusedCeOptions = {},
): tf.Scalar {
  checkShapes(xND, wUDV, bUV, targetsN);
  const [n, d] = xND.shape, v = wUDV.shape[1];
  const chunks = rowChunks(n, v, opts);
  const store = (opts.mode ??
    (n * v * 4 <= (opts.maxStoreBytes ?? 512 * 2 ** 20) ? "store" : "recompute")) === "store";
  const native = nativeKernel(opts);
  if (native) return native.loss(xND, wUDV, bUV, targetsN, { store, rows: chunks[0]?.size ?? 1 });

  const op = tf.customGrad((x, w, b, save) => {
    const xN = x as tf.Tensor2D, wU = w as tf.Tensor2D, bU = b as tf.Tensor1D;
    const xAugNA = withOnes(xN), wAugAV = withBiasRow(wU, bU), wUVD = tf.transpose(wU);
    const lseParts: tf.Tensor2D[] = [], invSums: tf.Tensor2D[] = [], exps: tf.Tensor2D[] = [];
    for (const { start, size } of chunks) {
      // One chunk's temporaries at a time: the peak is one [R, V] block plus the kept exps.
      const { lseR1, eRV, invSumR1 } = tf.tidy(() =>
        chunkSoftmax(rows(xAugNA, start, size), wAugAV)
      );
      lseParts.push(lseR1);
      if (store) {
        exps.push(eRV);
        invSums.push(invSumR1);
      } else tf.dispose([eRV, invSumR1]);
    }
    const lseN1 = tf.concat(lseParts, 0);
    const loss = tf.mean(tf.sub(tf.reshape(lseN1, [n]), targetLogits(xN, wUVD, bU, targetsN)));
    (save as tf.GradSaveFunc)([xN, wAugAV, wUVD, targetsN, lseN1, ...invSums, ...exps]);
    return {
      value: loss,
      gradFunc: (dy, saved) =>
        fusedBackward(dy as tf.Scalar, saved as tf.Tensor2D[], { n, d, v, chunks, store }),
    };
  });
  return op(xND, wUDV, bUV) as tf.Scalar;
}

interface BackwardPlan {
  n: number;
  d: number;
  v: number;
  chunks: { start: number; size: number }[];
  store: boolean;
}

/** a + b, disposing both inputs (a running sum that keeps one copy alive). */
function accumulate(a: tf.Tensor | null, b: tf.Tensor): tf.Tensor {
  if (!a) return b;
  const sum = tf.add(a, b);
  tf.dispose([a, b]);
  return sum;
}

/**
 * dL/dlogits = (softmax - onehot) * dy / N. The softmax part goes chunk by chunk, with the row
 * scales folded into the small operands rather than the [R, V] block; the one-hot part is sparse
 * (one column per row) and is done once with a gather and a scatter-add.
 */
function fusedBackward(dy: tf.Scalar, saved: tf.Tensor2D[], plan: BackwardPlan): tf.Tensor[] {
  const { n, d, v, chunks, store } = plan;
  const [xND, wAugAV, wUVD, targets, lseN1] = saved;
  const targetsN = targets as unknown as tf.Tensor1D;
  const k = chunks.length;
  const invSums = saved.slice(5, 5 + (store ? k : 0)), exps = saved.slice(5 + (store ? k : 0));
  return tf.tidy(() => {
    const g = tf.div(dy, n); // every row's share of the mean
    // Recompute mode: [x, 1, lse] against [W; b; -1] gives logit - lse straight out of the matmul.
    const xLseNA = store ? null : tf.concat([withOnes(xND), lseN1], 1) as tf.Tensor2D;
    const wLseAV = store ? null : tf.concat([wAugAV, tf.fill([1, v], -1)], 0) as tf.Tensor2D;
    const dxParts: tf.Tensor[] = [];
    let dwDV: tf.Tensor | null = null, dbV: tf.Tensor | null = null;
    chunks.forEach(({ start, size }, i) => {
      const [dxRD, dwPart, dbPart] = tf.tidy(() => {
        const pRV = store ? exps[i] : tf.exp(tf.matMul(rows(xLseNA!, start, size), wLseAV!));
        const scaleR1 = store ? tf.mul(invSums[i], g) : tf.mul(tf.ones([size, 1]), g);
        const xScaledDR = tf.transpose(tf.mul(rows(xND, start, size), scaleR1));
        // dW and db share their right operand, so wasm's XNNPACK packs the [R, V] block once.
        return [
          tf.mul(tf.matMul(pRV, wUVD), scaleR1),
          tf.matMul(xScaledDR, pRV),
          tf.matMul(tf.reshape(scaleR1, [1, size]), pRV),
        ];
      });
      dxParts.push(dxRD);
      [dwDV, dbV] = [accumulate(dwDV, dwPart), accumulate(dbV, dbPart)];
    });
    const dxND = tf.sub(tf.concat(dxParts, 0), tf.mul(tf.gather(wUVD, targetsN), g));
    const idxN1 = tf.reshape(targetsN, [n, 1]);
    const dw = tf.sub(dwDV!, tf.transpose(tf.scatterND(idxN1, tf.mul(xND, g), [v, d])));
    const db = tf.sub(tf.reshape(dbV!, [v]), tf.scatterND(idxN1, tf.mul(tf.ones([n]), g), [v]));
    return [dxND, dw, db];
  });
}
