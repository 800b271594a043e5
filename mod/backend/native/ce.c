/*
 * Softmax cross-entropy over the unembedding, forward and backward, for mod/transformer/ops.ts
 * (through mod/transformer/native_ce.ts): loss_i = logsumexp(x_i W + b) − (x_i W + b)[t_i], the
 * mean over rows and its gradients, on pointers into the tfjs wasm heap.
 *
 * Per block of rows: the logits x W come from cblas_sgemm (sgemm.h), then one pass per row, split
 * over the threads by rows: add b and take the max, exp(l − max) in place (vexp.h) and its sum,
 * the log-sum-exp and the loss. A row is 200 KB at V 50,257, so the second pass reads it from L2.
 * The backward turns the block into dL/dlogits in place, g·softmax − g·onehot with g = dy / N
 * (every row's share of the mean), summing its columns for db in the same pass (a V-long buffer
 * per thread), then two more sgemm calls: dx = d Wᵀ and dW += xᵀ d. sgemm takes the transposes
 * as flags, so neither W nor x is ever copied.
 *
 * Two modes, as in ops.ts: "store" keeps exp(l − row max) of every row and the rows' 1 / Σ exp
 * (block = [N, V], filled by the forward, consumed in place by the backward: the backward may run
 * once); "recompute" keeps only the log-sum-exp and recomputes exp(x W + b − lse) block by block
 * in a [rows, V] scratch.
 *
 * Shape key: N rows, D model width, V vocabulary; x [N,D], W [D,V], b [V], targets int32 [N],
 * row-major as in tfjs. Return codes: 0 done, -2 no sgemm bound, -3 a target outside [0, V).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "parallel.h"
#include "sgemm.h"
#include "vec.h"
#include "vexp.h"

/*
 * Seconds per phase since the last rtd_ce_timings call (the profile of
 * tests/bench/transformer_bench.ts): logits (sgemm, forward and recompute), forward rows
 * (max, exp, sum), backward rows (dL/dlogits, db), dx (sgemm), dW (sgemm).
 */
enum { T_LOGITS, T_FWD_ROWS, T_BWD_ROWS, T_DX, T_DW, T_N };
static double g_time[T_N];
static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Copies the phase times into out[0..5) and resets them; returns the number of phases. */
int rtd_ce_timings(double *out) {
  for (int i = 0; i < T_N; i++) {
    out[i] = g_time[i];
    g_time[i] = 0;
  }
  return T_N;
}

/* y = exp(x) over n floats (tests: the vector exp against Math.exp). */
void rtd_exp_f32(const float *x, float *y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) v8_store(y + i, v8_exp(v8_load(x + i)));
  if (i < n) v8_store_tail(y + i, v8_exp(v8_load_tail(x + i, (int)(n - i), 0.f)), (int)(n - i));
}

static int targets_ok(const int32_t *tgt, int64_t n, int64_t v) {
  for (int64_t i = 0; i < n; i++) {
    if (tgt[i] < 0 || tgt[i] >= v) return 0;
  }
  return 1;
}

typedef struct {
  float *block; /* [rows, V]: logits x W in, exp(l − max) out */
  const float *b;
  const int32_t *tgt; /* this block's targets */
  float *loss, *aux; /* this block's [rows] outputs: loss, and lse or 1 / Σ exp (store) */
  int64_t v;
  int store;
} fwd_ctx;

static void fwd_rows(void *vctx, int64_t r0, int64_t r1, int t) {
  (void)t;
  const fwd_ctx *c = (const fwd_ctx *)vctx;
  const int64_t v = c->v, v8 = v - v % 8;
  const int tail = (int)(v - v8);
  for (int64_t r = r0; r < r1; r++) {
    float *row = c->block + r * v;
    v8f mx = v8_splat(-INFINITY);
    for (int64_t i = 0; i < v8; i += 8) {
      v8f l = v8_load(row + i) + v8_load(c->b + i);
      v8_store(row + i, l);
      mx = v8_select(l > mx, l, mx);
    }
    float m = -INFINITY;
    for (int k = 0; k < 8; k++) m = mx[k] > m ? mx[k] : m;
    for (int64_t i = v8; i < v; i++) {
      row[i] += c->b[i];
      m = row[i] > m ? row[i] : m;
    }
    const float target = row[c->tgt[r]];
    const v8f mv = v8_splat(m);
    v8f s0 = {0}, s1 = {0};
    int64_t i = 0;
    for (; i + 16 <= v8; i += 16) {
      v8f e0 = v8_exp(v8_load(row + i) - mv), e1 = v8_exp(v8_load(row + i + 8) - mv);
      v8_store(row + i, e0);
      v8_store(row + i + 8, e1);
      s0 += e0;
      s1 += e1;
    }
    for (; i < v8; i += 8) {
      v8f e = v8_exp(v8_load(row + i) - mv);
      v8_store(row + i, e);
      s0 += e;
    }
    if (tail) {
      v8f e = v8_exp(v8_load_tail(row + v8, tail, -INFINITY) - mv);
      v8_store_tail(row + v8, e, tail);
      s1 += e;
    }
    const float sum = v8_sum(s0 + s1);
    const float lse = m + logf(sum);
    c->aux[r] = c->store ? 1.f / sum : lse;
    c->loss[r] = lse - target;
  }
}

/*
 * Forward: loss [N] (per row) and aux [N]. store = 1: block is [N, V] and keeps exp(l − row max)
 * of every row, aux the rows' 1 / Σ exp (the softmax's scale, applied in the backward's pass);
 * store = 0: block is a [rows, V] scratch, aux the log-sum-exp. rows: rows per sgemm block
 * (ignored when storing: the whole of N is one block).
 */
int rtd_ce_forward(int threads, int n, int d, int v, int rows, const float *x, const float *w,
                   const float *b, const int32_t *tgt, float *loss, float *aux, float *block,
                   int store) {
  if (!rtd_sgemm) return -2;
  if (!targets_ok(tgt, n, v)) return -3;
  if (store || rows < 1 || rows > n) rows = n;
  for (int start = 0; start < n; start += rows) {
    const int r = n - start < rows ? n - start : rows;
    float *blk = store ? block + (int64_t)start * v : block;
    double t0 = now();
    rtd_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, r, v, d, 1.f, x + (int64_t)start * d, d, w, v, 0.f,
              blk, v);
    double t1 = now();
    fwd_ctx c = {blk, b, tgt + start, loss + start, aux + start, v, store};
    parallel_for(threads, r, fwd_rows, &c);
    g_time[T_LOGITS] += t1 - t0;
    g_time[T_FWD_ROWS] += now() - t1;
  }
  return 0;
}

typedef struct {
  float *block; /* [rows, V]: exp(l − max) (store) or logits x W (recompute) in, dL/dlogits out */
  const float *b;
  const int32_t *tgt;
  const float *aux; /* the forward's: 1 / Σ exp (store) or lse (recompute) */
  float *colsum; /* [threads, V]: per-thread column sums of dL/dlogits (db) */
  int64_t v;
  float g;
  int recompute;
} bwd_ctx;

static void bwd_rows(void *vctx, int64_t r0, int64_t r1, int t) {
  const bwd_ctx *c = (const bwd_ctx *)vctx;
  const int64_t v = c->v, v8 = v - v % 8;
  const int tail = (int)(v - v8);
  const v8f g = v8_splat(c->g);
  float *cs = c->colsum + (int64_t)t * v;
  for (int64_t r = r0; r < r1; r++) {
    float *row = c->block + r * v;
    if (c->recompute) {
      const v8f lse = v8_splat(c->aux[r]);
      for (int64_t i = 0; i < v8; i += 8) {
        v8f dl = g * v8_exp(v8_load(row + i) + v8_load(c->b + i) - lse);
        v8_store(row + i, dl);
        v8_store(cs + i, v8_load(cs + i) + dl);
      }
      if (tail) {
        v8f l = v8_load_tail(row + v8, tail, 0.f) + v8_load_tail(c->b + v8, tail, 0.f);
        v8f dl = g * v8_exp(l - lse);
        v8_store_tail(row + v8, dl, tail);
        v8_store_tail(cs + v8, v8_load_tail(cs + v8, tail, 0.f) + dl, tail);
      }
    } else {
      const float gs = c->g * c->aux[r];
      const v8f gsv = v8_splat(gs);
      for (int64_t i = 0; i < v8; i += 8) {
        v8f dl = gsv * v8_load(row + i);
        v8_store(row + i, dl);
        v8_store(cs + i, v8_load(cs + i) + dl);
      }
      for (int64_t i = v8; i < v; i++) {
        row[i] *= gs;
        cs[i] += row[i];
      }
    }
    row[c->tgt[r]] -= c->g;
    cs[c->tgt[r]] -= c->g;
  }
}

static void sum_columns(float *db, const float *colsum, int threads, int64_t v) {
  memcpy(db, colsum, (size_t)v * sizeof(float));
  for (int t = 1; t < threads; t++) vaxpy(db, 1.f, colsum + (int64_t)t * v, (int)v);
}

/*
 * Backward: dx [N,D], dW [D,V], db [V] of mean(loss) · dy, from the forward's aux and (store = 1)
 * its block, which it overwrites; store = 0: block is a [rows, V] scratch. colsum is a
 * [threads, V] scratch. dy points at the upstream gradient (a scalar in the heap).
 */
int rtd_ce_backward(int threads, int n, int d, int v, int rows, const float *x, const float *w,
                    const float *b, const int32_t *tgt, const float *aux, const float *dy,
                    float *block, int store, float *colsum, float *dx, float *dw, float *db) {
  if (!rtd_sgemm) return -2;
  if (!targets_ok(tgt, n, v)) return -3;
  threads = rtd_clamp_threads(threads);
  if (store || rows < 1 || rows > n) rows = n;
  memset(colsum, 0, (size_t)threads * (size_t)v * sizeof(float));
  const float g = *dy / (float)n;
  for (int start = 0; start < n; start += rows) {
    const int r = n - start < rows ? n - start : rows;
    const float *xs = x + (int64_t)start * d;
    float *blk = store ? block + (int64_t)start * v : block;
    double t0 = now();
    if (!store) rtd_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, r, v, d, 1.f, xs, d, w, v, 0.f, blk, v);
    double t1 = now();
    bwd_ctx c = {blk, b, tgt + start, aux + start, colsum, v, g, !store};
    parallel_for(threads, r, bwd_rows, &c);
    double t2 = now();
    rtd_sgemm(ROW_MAJOR, NO_TRANS, TRANS, r, d, v, 1.f, blk, v, w, v, 0.f, dx + (int64_t)start * d,
              d);
    double t3 = now();
    rtd_sgemm(ROW_MAJOR, TRANS, NO_TRANS, d, v, r, 1.f, xs, d, blk, v, start == 0 ? 0.f : 1.f, dw,
              v);
    g_time[T_LOGITS] += t1 - t0;
    g_time[T_BWD_ROWS] += t2 - t1;
    g_time[T_DX] += t3 - t2;
    g_time[T_DW] += now() - t3;
  }
  sum_columns(db, colsum, threads, v);
  return 0;
}
