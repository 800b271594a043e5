/*
 * One SAE training step on the CPU, for the ReLU, TopK and BatchTopK SAEs of mod/sae (loss =
 * ‖x − x̂‖²/n + λ·Σf/n, decoder rows of unit norm): the gradients of a micro-batch (rtd_sae_grads, called once
 * per micro-batch, accumulating) and the update (rtd_sae_update: the decoder-row projection, Adam
 * on the four parameters, the row renormalisation and the per-feature "last fired" step). It is
 * the same math as mod/sae/grads.ts + mod/transformer/adam.ts + mod/sae/trainer.ts, on pointers
 * into the tfjs wasm heap (the parameters and Adam moments are updated in place there).
 *
 * Only the encoder's product x̄ W_enc is dense by nature; it runs on the BLAS that the caller
 * bound with rtd_bind_sgemm (OpenBLAS). After it, f has L0 nonzeros per row out of F, and the
 * sparse path touches only those: per row, the decoder forward and d loss/d pre at the support
 * (2·nnz·D multiply-adds); per feature, over the rows where it fired (the entries sorted by
 * feature with a counting sort), the W_dec and W_enc gradients (2·nnz·D). Rows are split over
 * the threads in the first half and features in the second, so no two threads write one value
 * and the result does not depend on the thread count. When f is dense (a fresh SAE fires on about
 * half its features), the dense path runs the four other products on BLAS instead.
 *
 * The encoder alone (rtd_sae_encode, for held-out evaluation and feature statistics) also computes
 * the inference forms of the other architectures: a threshold per feature or one for all
 * (JumpReLU, BatchTopK at inference) and the gated SAE's magnitude path.
 *
 * Shape key: M micro-batch rows, D input width, F features. Layouts (row-major, as in tfjs): x
 * [M,D], W_enc [D,F], b_enc [F], W_dec [F,D], b_dec [D].
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parallel.h"
#include "sgemm.h"
#include "vec.h"

#define TILE 16 /* features per W_enc-gradient tile: one 64-byte cache line of a row of [D,F] */

/*
 * Seconds spent per phase since the last rtd_sae_timings call (the profile table of
 * tests/bench/sae_bench.ts): encoder product, activation + CSR, rows (decoder forward and d/d pre),
 * sort by feature, features (W_dec, W_enc, b_enc gradients), dense-path products, update.
 */
enum { T_ENC, T_ACT, T_ROWS, T_SORT, T_FEAT, T_DENSE, T_UPDATE, T_N };
static double g_time[T_N];
static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Copies the phase times into out[0..7) and resets them; returns the number of phases. */
int rtd_sae_timings(double *out) {
  for (int i = 0; i < T_N; i++) {
    out[i] = g_time[i];
    g_time[i] = 0;
  }
  return T_N;
}


/* Scratch memory and gradient accumulators, kept between calls (grown, never shrunk). */
typedef struct {
  float *pre; /* [M,F]: pre-activations, then f in place */
  float *gpre_dense; /* [M,F]: d loss / d pre on the dense path */
  float *xbar, *gx; /* [M,D] */
  float *gwdec, *gwenc; /* [F,D], [D,F] accumulators */
  float *gbenc, *fire; /* [F] accumulators */
  float *gxsum; /* [D]: Σ over rows of d loss / d x̂ (b_dec's gradient through x̂) */
  int32_t *row_nnz, *row_ptr; /* [M], [M+1] */
  int32_t *col, *csc_row; /* [nnz] */
  float *val, *gpre, *csc_val, *csc_g; /* [nnz] */
  int32_t *counts; /* [threads, F] */
  float *sel; /* [nnz]: BatchTopK's copy of the values for the selection */
  int32_t *csc_ptr; /* [F+1] */
  int64_t *row_off; /* [M]: where row b's entries start in its thread's buffer */
  int32_t *tcol[RTD_MAX_THREADS]; /* per-thread (feature, value) lists of the activation pass */
  float *tval[RTD_MAX_THREADS];
  int64_t tcap[RTD_MAX_THREADS];
  int oom; /* set by a kernel that could not allocate */
  float *part; /* [threads, D + 2]: per-thread partial sums */
  size_t cap[24];
  int threads;
} rtd_ws;

enum {
  C_PRE, C_GPRED, C_XBAR, C_GX, C_GWDEC, C_GWENC, C_GBENC, C_FIRE, C_GXSUM, C_ROWNNZ, C_ROWPTR,
  C_COL, C_CSCROW, C_VAL, C_GPRE, C_CSCVAL, C_CSCG, C_COUNTS, C_CSCPTR, C_PART, C_ROWOFF, C_SEL
};

static int grow(rtd_ws *ws, int slot, void **p, size_t bytes) {
  if (bytes == 0) bytes = 64;
  if (ws->cap[slot] >= bytes) return 1;
  void *q = 0;
  size_t rounded = (bytes + 63) / 64 * 64;
  if (posix_memalign(&q, 64, rounded) != 0) return 0;
  free(*p);
  *p = q;
  ws->cap[slot] = rounded;
  return 1;
}

void *rtd_ws_new(void) { return calloc(1, sizeof(rtd_ws)); }

void rtd_ws_free(void *p) {
  rtd_ws *ws = (rtd_ws *)p;
  if (!ws) return;
  void *all[] = {ws->pre, ws->gpre_dense, ws->xbar, ws->gx, ws->gwdec, ws->gwenc, ws->gbenc,
                 ws->fire, ws->gxsum, ws->row_nnz, ws->row_ptr, ws->col, ws->csc_row, ws->val,
                 ws->gpre, ws->csc_val, ws->csc_g, ws->counts, ws->csc_ptr, ws->part, ws->sel};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) free(all[i]);
  free(ws->row_off);
  for (int t = 0; t < RTD_MAX_THREADS; t++) free(ws->tcol[t]), free(ws->tval[t]);
  free(ws);
}

typedef struct {
  rtd_ws *ws;
  int M, D, F, k, first, threads;
  float norm, lambda;
  const float *x, *w_enc, *b_enc, *w_dec, *b_dec;
  /*
   * The activation (see k_activate): f_i = pre_i where pre_i > thr_i, thr_i = thr[i] when thr is
   * set, else thr_all (0: ReLU). Gated (mag_s set): f_i = max(0, u_i mag_s[i] + mag_b[i]) where
   * pre_i > 0, u = x̄ W_enc without b_enc.
   */
  const float *thr, *mag_s, *mag_b;
  float thr_all;
} grads_args;

/* x̄ = x − b_dec. */
static void k_xbar(void *c, int64_t b0, int64_t b1, int t) {
  (void)t;
  grads_args *a = (grads_args *)c;
  const int D = a->D;
  for (int64_t b = b0; b < b1; b++) {
    const float *x = a->x + b * D;
    float *xb = a->ws->xbar + b * D;
    for (int d = 0; d < D; d++) xb[d] = x[d] - a->b_dec[d];
  }
}

static void swapf(float *v, int i, int j) {
  float t = v[i];
  v[i] = v[j];
  v[j] = t;
}

/* The k-th largest of v[0..n) (1-based k ≤ n), reordering v (quickselect, median of three). */
static float kth_largest(float *v, int n, int k) {
  int lo = 0, hi = n - 1, want = k - 1;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (v[mid] > v[lo]) swapf(v, mid, lo);
    if (v[hi] > v[lo]) swapf(v, hi, lo);
    if (v[mid] > v[hi]) swapf(v, mid, hi); /* v[hi] is now the median of the three */
    float pivot = v[hi];
    int store = lo;
    for (int i = lo; i < hi; i++) {
      if (v[i] > pivot) swapf(v, i, store++);
    }
    swapf(v, store, hi);
    if (store == want) return v[store];
    if (store < want) lo = store + 1;
    else hi = store - 1;
  }
  return v[lo];
}

/* Grows thread t's entry buffers to hold `need` entries (keeping their contents). */
static int grow_thread(rtd_ws *ws, int t, int64_t need) {
  if (ws->tcap[t] >= need) return 1;
  int64_t cap = ws->tcap[t] ? ws->tcap[t] : 4096;
  while (cap < need) cap *= 2;
  int32_t *c = (int32_t *)realloc(ws->tcol[t], sizeof(int32_t) * (size_t)cap);
  if (c) ws->tcol[t] = c;
  float *v = (float *)realloc(ws->tval[t], sizeof(float) * (size_t)cap);
  if (v) ws->tval[t] = v;
  if (!c || !v) return 0;
  ws->tcap[t] = cap;
  return 1;
}

/*
 * f = the activation of pre + b_enc (grads_args: ReLU, a threshold per feature or one for all, or
 * the gated magnitude path), and where k > 0 only the entries at or above the row's k-th largest
 * (as mod/sae/sae.ts's topkRelu), read once from pre (not written back) and gathered as (feature,
 * value) lists into this thread's buffers; row_off[b] is where row b's list starts there. Only
 * nonzero values are listed.
 */
/*
 * The gated magnitude u·s + b, rounded after the product and after the sum like tfjs's separate
 * mul and add (volatile: no fused multiply-add under -ffp-contract=fast), so the native and tfjs
 * encoders agree bit for bit.
 */
static float gated_mag(float u, float s, float b) {
  volatile float p = u * s;
  return p + b;
}

static void k_activate(void *c, int64_t b0, int64_t b1, int t) {
  grads_args *a = (grads_args *)c;
  rtd_ws *ws = a->ws;
  const int F = a->F, k = a->k;
  const float *benc = a->b_enc, *thr = a->thr, *ms = a->mag_s, *mb = a->mag_b;
  const float thr_all = ms ? 0.f : a->thr_all;
  int64_t used = 0;
  for (int64_t b = b0; b < b1; b++) {
    const float *row = ws->pre + b * (int64_t)F;
    int64_t start = used;
    int i = 0;
    for (; i + 8 <= F; i += 8) {
      const v8f v = v8_load(row + i) + v8_load(benc + i);
      v8f th = {thr_all, thr_all, thr_all, thr_all, thr_all, thr_all, thr_all, thr_all};
      if (thr) th = v8_load(thr + i);
      const v8i pos = v > th;
      if (!((pos[0] | pos[1]) | (pos[2] | pos[3]) | (pos[4] | pos[5]) | (pos[6] | pos[7]))) continue;
      if (!grow_thread(ws, t, used + 8)) goto oom;
      for (int q = 0; q < 8; q++) {
        if (!pos[q]) continue;
        const float f = ms ? gated_mag(row[i + q], ms[i + q], mb[i + q]) : v[q];
        if (f > 0.f) {
          ws->tcol[t][used] = i + q;
          ws->tval[t][used++] = f;
        }
      }
    }
    for (; i < F; i++) {
      const float v = row[i] + benc[i];
      if (v > (thr ? thr[i] : thr_all)) {
        const float f = ms ? gated_mag(row[i], ms[i], mb[i]) : v;
        if (!(f > 0.f)) continue;
        if (!grow_thread(ws, t, used + 1)) goto oom;
        ws->tcol[t][used] = i;
        ws->tval[t][used++] = f;
      }
    }
    int64_t n = used - start;
    if (k > 0 && n > k) {
      float *tmp = (float *)malloc(sizeof(float) * (size_t)n);
      if (!tmp) goto oom;
      memcpy(tmp, ws->tval[t] + start, sizeof(float) * (size_t)n);
      const float thr = kth_largest(tmp, (int)n, k);
      free(tmp);
      int64_t o = start;
      for (int64_t j = start; j < used; j++) {
        if (ws->tval[t][j] >= thr) {
          ws->tcol[t][o] = ws->tcol[t][j];
          ws->tval[t][o++] = ws->tval[t][j];
        }
      }
      used = o;
      n = used - start;
    }
    ws->row_off[b] = start;
    ws->row_nnz[b] = (int32_t)n;
  }
  return;
oom:
  ws->oom = 1;
  for (int64_t b = b0; b < b1; b++) ws->row_nnz[b] = 0, ws->row_off[b] = 0;
}

/* The threads' lists, copied into one CSR (rows in order). */
static void k_gather(void *c, int64_t b0, int64_t b1, int t) {
  grads_args *a = (grads_args *)c;
  rtd_ws *ws = a->ws;
  for (int64_t b = b0; b < b1; b++) {
    const int64_t o = ws->row_off[b], n = ws->row_nnz[b];
    memcpy(ws->col + ws->row_ptr[b], ws->tcol[t] + o, sizeof(int32_t) * (size_t)n);
    memcpy(ws->val + ws->row_ptr[b], ws->tval[t] + o, sizeof(float) * (size_t)n);
  }
}

/* Dense path: f written out as a dense [M,F] matrix (over pre) from the CSR. */
static void k_densify(void *c, int64_t b0, int64_t b1, int t) {
  (void)t;
  grads_args *a = (grads_args *)c;
  rtd_ws *ws = a->ws;
  const int F = a->F;
  for (int64_t b = b0; b < b1; b++) {
    float *row = ws->pre + b * (int64_t)F;
    memset(row, 0, sizeof(float) * (size_t)F);
    for (int32_t j = ws->row_ptr[b]; j < ws->row_ptr[b + 1]; j++) row[ws->col[j]] = ws->val[j];
  }
}

/*
 * Per row: x̂ − x = b_dec − x + Σ f_i W_dec[i], the loss parts, d loss/d x̂ = 2 (x̂ − x)/n, and
 * d loss/d pre_i = (d loss/d x̂)·W_dec[i] + λ/n at the support. Also counts entries per feature
 * (counts[t]) for the counting sort.
 */
static void k_rows(void *c, int64_t b0, int64_t b1, int t) {
  grads_args *a = (grads_args *)c;
  rtd_ws *ws = a->ws;
  const int D = a->D, F = a->F;
  const float scale = 2.f / a->norm, l1g = a->lambda / a->norm;
  float *part = ws->part + (int64_t)t * (D + 2);
  int32_t *count = ws->counts + (int64_t)t * F;
  memset(count, 0, sizeof(int32_t) * (size_t)F);
  memset(part, 0, sizeof(float) * (size_t)(D + 2));
  double sse = 0, l1 = 0;
  for (int64_t b = b0; b < b1; b++) {
    float *g = ws->gx + b * D;
    const float *x = a->x + b * D;
    for (int d = 0; d < D; d++) g[d] = a->b_dec[d] - x[d];
    for (int32_t j = ws->row_ptr[b]; j < ws->row_ptr[b + 1]; j++) {
      const float v = ws->val[j];
      vaxpy(g, v, a->w_dec + (int64_t)ws->col[j] * D, D);
      l1 += v;
      count[ws->col[j]]++;
    }
    sse += vsumsq(g, D);
    for (int d = 0; d < D; d++) {
      g[d] *= scale;
      part[d] += g[d];
    }
    for (int32_t j = ws->row_ptr[b]; j < ws->row_ptr[b + 1]; j++) {
      ws->gpre[j] = vdot(g, a->w_dec + (int64_t)ws->col[j] * D, D) + l1g;
    }
  }
  part[D] = (float)sse;
  part[D + 1] = (float)l1;
}

/* The entries of this thread's rows, scattered into feature order (counts[t] holds offsets). */
static void k_scatter(void *c, int64_t b0, int64_t b1, int t) {
  grads_args *a = (grads_args *)c;
  rtd_ws *ws = a->ws;
  int32_t *next = ws->counts + (int64_t)t * a->F;
  for (int64_t b = b0; b < b1; b++) {
    for (int32_t j = ws->row_ptr[b]; j < ws->row_ptr[b + 1]; j++) {
      int32_t o = next[ws->col[j]]++;
      ws->csc_row[o] = (int32_t)b;
      ws->csc_val[o] = ws->val[j];
      ws->csc_g[o] = ws->gpre[j];
    }
  }
}

/*
 * Per feature i, over the rows r where it fired: W_dec[i] gradient += Σ f_ri (d loss/d x̂)_r,
 * W_enc[:, i] gradient += Σ (d loss/d pre)_ri x̄_r, b_enc[i] += Σ (d loss/d pre)_ri, fire[i] +=
 * count. Features go in tiles of TILE so that the [D,F] W_enc gradient is written a cache line
 * at a time.
 */
static void k_features(void *c, int64_t i0, int64_t i1, int t) {
  (void)t;
  grads_args *a = (grads_args *)c;
  rtd_ws *ws = a->ws;
  const int D = a->D, F = a->F, first = a->first;
  float *tile = (float *)malloc(sizeof(float) * (size_t)D * TILE);
  float *genc = (float *)malloc(sizeof(float) * (size_t)D);
  for (int64_t s = i0; s < i1; s += TILE) {
    const int w = (int)(i1 - s < TILE ? i1 - s : TILE);
    for (int q = 0; q < w; q++) {
      const int64_t i = s + q;
      float *gdec = ws->gwdec + i * D;
      if (first) memset(gdec, 0, sizeof(float) * (size_t)D);
      memset(genc, 0, sizeof(float) * (size_t)D);
      float gb = 0.f;
      for (int32_t o = ws->csc_ptr[i]; o < ws->csc_ptr[i + 1]; o++) {
        const float v = ws->csc_val[o], g = ws->csc_g[o];
        const float *gx = ws->gx + (int64_t)ws->csc_row[o] * D;
        const float *xb = ws->xbar + (int64_t)ws->csc_row[o] * D;
        vaxpy(gdec, v, gx, D);
        vaxpy(genc, g, xb, D);
        gb += g;
      }
      const float n = (float)(ws->csc_ptr[i + 1] - ws->csc_ptr[i]);
      ws->gbenc[i] = first ? gb : ws->gbenc[i] + gb;
      ws->fire[i] = first ? n : ws->fire[i] + n;
      for (int d = 0; d < D; d++) tile[(int64_t)d * TILE + q] = genc[d];
    }
    for (int d = 0; d < D; d++) {
      float *dst = ws->gwenc + (int64_t)d * F + s;
      const float *src = tile + (int64_t)d * TILE;
      if (first) memcpy(dst, src, sizeof(float) * (size_t)w);
      else for (int q = 0; q < w; q++) dst[q] += src[q];
    }
  }
  free(genc);
  free(tile);
}

/* Dense path, per row: x̂ − x was left in gx by sgemm; loss parts, scaling, Σ rows. */
static void k_dense_rows(void *c, int64_t b0, int64_t b1, int t) {
  grads_args *a = (grads_args *)c;
  rtd_ws *ws = a->ws;
  const int D = a->D;
  const float scale = 2.f / a->norm;
  float *part = ws->part + (int64_t)t * (D + 2);
  memset(part, 0, sizeof(float) * (size_t)(D + 2));
  double sse = 0, l1 = 0;
  for (int64_t b = b0; b < b1; b++) {
    float *g = ws->gx + b * D;
    sse += vsumsq(g, D);
    for (int d = 0; d < D; d++) {
      g[d] *= scale;
      part[d] += g[d];
    }
    for (int32_t j = ws->row_ptr[b]; j < ws->row_ptr[b + 1]; j++) l1 += ws->val[j];
  }
  part[D] = (float)sse;
  part[D + 1] = (float)l1;
}

/* Dense path, per feature column: mask d loss/d f to the support, add λ/n, column sums. */
static void k_dense_cols(void *c, int64_t i0, int64_t i1, int t) {
  (void)t;
  grads_args *a = (grads_args *)c;
  rtd_ws *ws = a->ws;
  const int F = a->F;
  const float l1g = a->lambda / a->norm;
  if (a->first) {
    memset(ws->gbenc + i0, 0, sizeof(float) * (size_t)(i1 - i0));
    memset(ws->fire + i0, 0, sizeof(float) * (size_t)(i1 - i0));
  }
  for (int64_t b = 0; b < a->M; b++) {
    const float *f = ws->pre + b * (int64_t)F;
    float *g = ws->gpre_dense + b * (int64_t)F;
    for (int64_t i = i0; i < i1; i++) {
      const float on = f[i] > 0.f ? 1.f : 0.f;
      g[i] = on * (g[i] + l1g);
      ws->gbenc[i] += g[i];
      ws->fire[i] += on;
    }
  }
}

static void merge_parts(rtd_ws *ws, int threads, int D, int first, double *out) {
  double sse = 0, l1 = 0;
  if (first) memset(ws->gxsum, 0, sizeof(float) * (size_t)D);
  for (int t = 0; t < threads; t++) {
    const float *p = ws->part + (int64_t)t * (D + 2);
    for (int d = 0; d < D; d++) ws->gxsum[d] += p[d];
    sse += p[D];
    l1 += p[D + 1];
  }
  out[0] = sse;
  out[1] = l1;
}

/*
 * The encoder: x̄ = x − b_dec, pre = x̄ W_enc on BLAS, f = activation (ReLU / TopK) gathered as
 * CSR (row_ptr, col, val). Returns the number of nonzeros, or −1 when memory ran out; *t1 = the
 * time the encoder product ended.
 */
static int64_t encode_csr(rtd_ws *ws, grads_args *a, int threads, int used, double *t1) {
  const int M = a->M, D = a->D, F = a->F;
  double t0 = now();
  parallel_for(threads, M, k_xbar, a);
  rtd_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, M, F, D, 1.f, ws->xbar, D, a->w_enc, F, 0.f, ws->pre, F);
  *t1 = now();
  g_time[T_ENC] += *t1 - t0;
  ws->oom = 0;
  parallel_for(used, M, k_activate, a);
  if (ws->oom) return -1;
  int64_t nnz = 0;
  ws->row_ptr[0] = 0;
  for (int b = 0; b < M; b++) {
    nnz += ws->row_nnz[b];
    ws->row_ptr[b + 1] = (int32_t)nnz;
  }
  const size_t n = (size_t)nnz;
  if (!(grow(ws, C_COL, (void **)&ws->col, 4 * n) && grow(ws, C_VAL, (void **)&ws->val, 4 * n))) {
    return -1;
  }
  parallel_for(used, M, k_gather, a);
  return nnz;
}

/*
 * BatchTopK's selection over the micro-batch: of the CSR's nnz entries, those at or above the
 * keep-th largest value stay (ties at the cut all stay, as in mod/sae/batchtopk.ts), compacted in
 * place. *min_kept = the smallest value kept (+∞ when none). Returns the new nnz, or −1 when
 * memory ran out.
 */
static int64_t batch_select(rtd_ws *ws, int M, int64_t nnz, int64_t keep, double *min_kept) {
  *min_kept = INFINITY;
  if (nnz == 0) return 0;
  if (keep >= nnz) {
    for (int64_t j = 0; j < nnz; j++) *min_kept = ws->val[j] < *min_kept ? ws->val[j] : *min_kept;
    return nnz;
  }
  if (!grow(ws, C_SEL, (void **)&ws->sel, 4 * (size_t)nnz)) return -1;
  memcpy(ws->sel, ws->val, sizeof(float) * (size_t)nnz);
  const float thr = kth_largest(ws->sel, (int)nnz, (int)keep);
  *min_kept = thr;
  int32_t o = 0;
  for (int b = 0; b < M; b++) {
    const int32_t j0 = ws->row_ptr[b], j1 = ws->row_ptr[b + 1];
    ws->row_ptr[b] = o;
    for (int32_t j = j0; j < j1; j++) {
      if (ws->val[j] >= thr) {
        ws->col[o] = ws->col[j];
        ws->val[o++] = ws->val[j];
      }
    }
    ws->row_nnz[b] = o - ws->row_ptr[b];
  }
  ws->row_ptr[M] = o;
  return o;
}

/*
 * f = the SAE's activations of M rows as CSR, without gradients (evaluation, feature
 * statistics). Returns the number of nonzeros (−1: out of memory, −2: no sgemm bound); the
 * arrays are read with rtd_ws_csr and stay valid until the next call on the workspace.
 */
int64_t rtd_sae_encode(void *wsp, int threads, int M, int D, int F, int k, const float *x,
                       const float *w_enc, const float *b_enc, const float *b_dec,
                       const float *thr, float thr_all, const float *mag_s, const float *mag_b) {
  rtd_ws *ws = (rtd_ws *)wsp;
  if (!rtd_sgemm) return -2;
  threads = rtd_clamp_threads(threads);
  const size_t MF = (size_t)M * F, MD = (size_t)M * D;
  int ok = grow(ws, C_PRE, (void **)&ws->pre, 4 * MF) &&
           grow(ws, C_XBAR, (void **)&ws->xbar, 4 * MD) &&
           grow(ws, C_ROWNNZ, (void **)&ws->row_nnz, 4 * (size_t)M) &&
           grow(ws, C_ROWPTR, (void **)&ws->row_ptr, 4 * ((size_t)M + 1)) &&
           grow(ws, C_ROWOFF, (void **)&ws->row_off, 8 * (size_t)M);
  if (!ok) return -1;
  grads_args a = {ws, M, D, F, k, 1, threads, 1.f, 0.f, x, w_enc, b_enc, 0, b_dec,
                  thr, mag_s, mag_b, thr_all};
  double t1;
  return encode_csr(ws, &a, threads, M < 2 ? 1 : threads, &t1);
}

typedef struct {
  rtd_ws *ws;
  int D;
  const float *x, *w_dec, *b_dec;
  double part[RTD_MAX_THREADS];
  int oom;
} sse_args;

/* Per row: x̂ − x = b_dec − x + Σ f_i W_dec[i] over the row's nonzeros, and its squared norm. */
static void k_sse(void *c, int64_t b0, int64_t b1, int t) {
  sse_args *a = (sse_args *)c;
  const rtd_ws *ws = a->ws;
  const int D = a->D;
  float *g = (float *)malloc(sizeof(float) * (size_t)D);
  if (!g) {
    a->oom = 1;
    return;
  }
  double sse = 0;
  for (int64_t b = b0; b < b1; b++) {
    const float *x = a->x + b * D;
    for (int d = 0; d < D; d++) g[d] = a->b_dec[d] - x[d];
    for (int32_t j = ws->row_ptr[b]; j < ws->row_ptr[b + 1]; j++) {
      vaxpy(g, ws->val[j], a->w_dec + (int64_t)ws->col[j] * D, D);
    }
    sse += vsumsq(g, D);
  }
  free(g);
  a->part[t] = sse;
}

/*
 * Σ‖x − x̂‖² over the M rows of the last rtd_sae_encode on this workspace (x must be the rows it
 * encoded), x̂ = b_dec + Σ f_i W_dec[i] from its CSR: evaluation's reconstruction error in
 * nnz·D multiply-adds instead of a dense M×F×D decode. out[0] = the sum. Returns 0, or −1 when
 * memory ran out.
 */
int rtd_sae_sse(void *wsp, int threads, int M, int D, const float *x, const float *w_dec,
                const float *b_dec, double *out) {
  sse_args a = {(rtd_ws *)wsp, D, x, w_dec, b_dec, {0}, 0};
  threads = rtd_clamp_threads(threads);
  parallel_for(threads, M, k_sse, &a);
  if (a.oom) return -1;
  double sse = 0;
  for (int t = 0; t < threads; t++) sse += a.part[t];
  out[0] = sse;
  return 0;
}

/* The CSR of the last encode: out[0] = row_ptr (M+1 int32), out[1] = col, out[2] = val. */
void rtd_ws_csr(void *wsp, void **out) {
  rtd_ws *ws = (rtd_ws *)wsp;
  out[0] = ws->row_ptr;
  out[1] = ws->col;
  out[2] = ws->val;
}

/*
 * The gradients of one micro-batch of M rows, divided by `norm` (the full batch's rows), added to
 * the accumulators (set instead when `first`). k > 0: TopK; batch_k > 0: BatchTopK (the batch_k
 * largest ReLU entries of the micro-batch). The dense path runs when the share of nonzero f
 * entries exceeds `dense_above` (1 or more: never; 0 or less: always). out[0..4]: Σ‖x̂ − x‖², Σf,
 * number of nonzero f, 1 when the dense path ran, and for BatchTopK the smallest nonzero f (+∞
 * when none; else +∞).
 * Returns 0, or −1 when memory ran out, −2 when no sgemm is bound.
 */
int rtd_sae_grads(void *wsp, int threads, int M, int D, int F, int k, int64_t batch_k, float norm,
                  float lambda, int first, const float *x, const float *w_enc, const float *b_enc,
                  const float *w_dec, const float *b_dec, float dense_above, double *out) {
  rtd_ws *ws = (rtd_ws *)wsp;
  if (!rtd_sgemm) return -2;
  threads = rtd_clamp_threads(threads);
  const size_t MF = (size_t)M * F, MD = (size_t)M * D, FD = (size_t)F * D;
  int ok = grow(ws, C_PRE, (void **)&ws->pre, 4 * MF) && grow(ws, C_XBAR, (void **)&ws->xbar, 4 * MD) &&
           grow(ws, C_GX, (void **)&ws->gx, 4 * MD) &&
           grow(ws, C_GWDEC, (void **)&ws->gwdec, 4 * FD) &&
           grow(ws, C_GWENC, (void **)&ws->gwenc, 4 * FD) &&
           grow(ws, C_GBENC, (void **)&ws->gbenc, 4 * (size_t)F) &&
           grow(ws, C_FIRE, (void **)&ws->fire, 4 * (size_t)F) &&
           grow(ws, C_GXSUM, (void **)&ws->gxsum, 4 * (size_t)D) &&
           grow(ws, C_ROWNNZ, (void **)&ws->row_nnz, 4 * (size_t)M) &&
           grow(ws, C_ROWPTR, (void **)&ws->row_ptr, 4 * ((size_t)M + 1)) &&
           grow(ws, C_COUNTS, (void **)&ws->counts, 4 * (size_t)threads * F) &&
           grow(ws, C_CSCPTR, (void **)&ws->csc_ptr, 4 * ((size_t)F + 1)) &&
           grow(ws, C_PART, (void **)&ws->part, 4 * (size_t)threads * (D + 2)) &&
           grow(ws, C_ROWOFF, (void **)&ws->row_off, 8 * (size_t)M);
  if (!ok) return -1;
  grads_args a = {ws, M, D, F, k, first, threads, norm, lambda, x, w_enc, b_enc, w_dec, b_dec,
                  0, 0, 0, 0.f};
  const int used = M < 2 ? 1 : threads; /* what parallel_for over the M rows will use */

  double t1;
  int64_t nnz = encode_csr(ws, &a, threads, used, &t1);
  if (nnz < 0) return -1;
  double min_kept = INFINITY;
  if (batch_k > 0) nnz = batch_select(ws, M, nnz, batch_k, &min_kept);
  if (nnz < 0) return -1;
  out[4] = min_kept;
  out[2] = (double)nnz;
  const size_t n = (size_t)nnz;
  const int dense = (double)nnz > (double)dense_above * (double)MF;
  out[3] = dense;

  if (dense) {
    if (!grow(ws, C_GPRED, (void **)&ws->gpre_dense, 4 * MF)) return -1;
    parallel_for(threads, M, k_densify, &a);
    /* gx = b_dec − x, then += f W_dec: x̂ − x. */
    for (int64_t b = 0; b < M; b++) {
      for (int d = 0; d < D; d++) ws->gx[b * D + d] = b_dec[d] - x[b * D + d];
    }
    rtd_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, M, D, F, 1.f, ws->pre, F, w_dec, D, 1.f, ws->gx, D);
    parallel_for(used, M, k_dense_rows, &a);
    merge_parts(ws, used, D, first, out);
    rtd_sgemm(ROW_MAJOR, TRANS, NO_TRANS, F, D, M, 1.f, ws->pre, F, ws->gx, D, first ? 0.f : 1.f,
            ws->gwdec, D);
    rtd_sgemm(ROW_MAJOR, NO_TRANS, TRANS, M, F, D, 1.f, ws->gx, D, w_dec, D, 0.f, ws->gpre_dense, F);
    parallel_for_aligned(threads, F, TILE, k_dense_cols, &a);
    rtd_sgemm(ROW_MAJOR, TRANS, NO_TRANS, D, F, M, 1.f, ws->xbar, D, ws->gpre_dense, F,
            first ? 0.f : 1.f, ws->gwenc, F);
    g_time[T_DENSE] += now() - t1;
    return 0;
  }

  ok = grow(ws, C_GPRE, (void **)&ws->gpre, 4 * n) &&
       grow(ws, C_CSCROW, (void **)&ws->csc_row, 4 * n) &&
       grow(ws, C_CSCVAL, (void **)&ws->csc_val, 4 * n) &&
       grow(ws, C_CSCG, (void **)&ws->csc_g, 4 * n);
  if (!ok) return -1;
  double t2 = now();
  g_time[T_ACT] += t2 - t1;
  parallel_for(used, M, k_rows, &a);
  merge_parts(ws, used, D, first, out);
  double t3 = now();
  g_time[T_ROWS] += t3 - t2;
  /* Counting sort by feature: counts[t][i] becomes thread t's first slot for feature i. */
  int32_t total = 0;
  for (int i = 0; i < F; i++) {
    ws->csc_ptr[i] = total;
    for (int t = 0; t < used; t++) {
      int32_t c = ws->counts[(int64_t)t * F + i];
      ws->counts[(int64_t)t * F + i] = total;
      total += c;
    }
  }
  ws->csc_ptr[F] = total;
  parallel_for(used, M, k_scatter, &a);
  double t4 = now();
  g_time[T_SORT] += t4 - t3;
  parallel_for_aligned(threads, F, TILE, k_features, &a);
  g_time[T_FEAT] += now() - t4;
  return 0;
}

typedef struct {
  rtd_ws *ws;
  int D, F;
  float *w_enc, *w_dec, *m_enc, *v_enc, *m_dec, *v_dec, *g_bdec;
  float step_size, beta1, beta2, eps;
} update_args;

static inline float adam1(float *p, float *m, float *v, float g, float s, float b1, float b2,
                          float eps) {
  const float mn = *m * b1 + g * (1.f - b1);
  const float vn = *v * b2 + g * g * (1.f - b2);
  *m = mn;
  *v = vn;
  *p = *p - mn / (sqrtf(vn) + eps) * s;
  return *p;
}

/* b_dec's gradient: Σ rows of d loss/d x̂ − W_enc (Σ d loss/d pre), before W_enc changes. */
static void k_bdec_grad(void *c, int64_t d0, int64_t d1, int t) {
  (void)t;
  update_args *u = (update_args *)c;
  for (int64_t d = d0; d < d1; d++) {
    u->g_bdec[d] = u->ws->gxsum[d] - vdot(u->w_enc + d * u->F, u->ws->gbenc, u->F);
  }
}

/* Decoder rows: gradient minus its component along the row, Adam, then the row to unit norm. */
static void k_dec_rows(void *c, int64_t i0, int64_t i1, int t) {
  (void)t;
  update_args *u = (update_args *)c;
  const int D = u->D;
  for (int64_t i = i0; i < i1; i++) {
    float *w = u->w_dec + i * D, *m = u->m_dec + i * D, *v = u->v_dec + i * D;
    float *g = u->ws->gwdec + i * D;
    const float ww = vsumsq(w, D), gw = vdot(g, w, D);
    const float r = gw / (ww > 1e-30f ? ww : 1e-30f);
    for (int d = 0; d < D; d++) {
      adam1(&w[d], &m[d], &v[d], g[d] - r * w[d], u->step_size, u->beta1, u->beta2, u->eps);
    }
    float norm = sqrtf(vsumsq(w, D));
    norm = norm > 1e-12f ? norm : 1e-12f;
    for (int d = 0; d < D; d++) w[d] = w[d] / norm;
  }
}

static void k_enc(void *c, int64_t j0, int64_t j1, int t) {
  (void)t;
  update_args *u = (update_args *)c;
  const float *g = u->ws->gwenc;
  for (int64_t j = j0; j < j1; j++) {
    adam1(&u->w_enc[j], &u->m_enc[j], &u->v_enc[j], g[j], u->step_size, u->beta1, u->beta2,
          u->eps);
  }
}

/*
 * The update after a step's micro-batches: Adam (bias corrections folded into step_size) on W_enc,
 * b_enc, W_dec (its gradient projected off each row first, the row renormalised after) and b_dec;
 * last_fired[i] = step where feature i fired in the step. Everything in place.
 */
int rtd_sae_update(void *wsp, int threads, int D, int F, float *w_enc, float *b_enc, float *w_dec,
                   float *b_dec, float *m_wenc, float *v_wenc, float *m_benc, float *v_benc,
                   float *m_wdec, float *v_wdec, float *m_bdec, float *v_bdec, float step_size,
                   float beta1, float beta2, float eps, float step, float *last_fired) {
  rtd_ws *ws = (rtd_ws *)wsp;
  const double t0 = now();
  float *g_bdec = (float *)malloc(sizeof(float) * (size_t)D);
  if (!g_bdec) return -1;
  update_args u = {ws, D, F, w_enc, w_dec, m_wenc, v_wenc, m_wdec, v_wdec, g_bdec,
                   step_size, beta1, beta2, eps};
  parallel_for(threads, D, k_bdec_grad, &u);
  parallel_for(threads, F, k_dec_rows, &u);
  parallel_for(threads, (int64_t)D * F, k_enc, &u);
  for (int i = 0; i < F; i++) {
    adam1(&b_enc[i], &m_benc[i], &v_benc[i], ws->gbenc[i], step_size, beta1, beta2, eps);
    if (ws->fire[i] > 0.f) last_fired[i] = step;
  }
  for (int d = 0; d < D; d++) {
    adam1(&b_dec[d], &m_bdec[d], &v_bdec[d], g_bdec[d], step_size, beta1, beta2, eps);
  }
  free(g_bdec);
  g_time[T_UPDATE] += now() - t0;
  return 0;
}

/* The step's accumulated per-feature firing counts (valid after rtd_sae_grads, F floats). */
const float *rtd_sae_fire(void *wsp) { return ((rtd_ws *)wsp)->fire; }
