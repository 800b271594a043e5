/*
 * The transformer's optimiser step in place on the tfjs wasm heap, for
 * mod/transformer/native_adam.ts: the squared norm of a gradient (rtd_sumsq, for the global-norm
 * clip) and one AdamW update of a parameter (rtd_adamw), the same math as Adam.step in
 * mod/transformer/adam.ts on the clipped gradient ĝ = scale · g:
 *
 *   m ← β1 m + (1 − β1) ĝ;  v ← β2 v + (1 − β2) ĝ²;  p ← p − step · m / (√v + ε) − decay · p
 *
 * with step = lr · √(1 − β2^t) / (1 − β1^t) (Adam.nextStepSize) and decay = lr · weight decay
 * (0 for parameters without it). One pass over p, g, m and v instead of tfjs's dozen elementwise
 * kernels, each a pass of its own on one thread; split over the threads in slices of whole
 * 4,096-float blocks (small parameters stay on the calling thread).
 */
#include <math.h>
#include <stdint.h>

#include "parallel.h"
#include "vec.h"

#define BLOCK 4096

typedef struct {
  const float *g;
  double part[RTD_MAX_THREADS];
} sumsq_ctx;

static void sumsq_range(void *vctx, int64_t i0, int64_t i1, int t) {
  sumsq_ctx *c = (sumsq_ctx *)vctx;
  double s = 0;
  for (int64_t i = i0; i < i1; i += BLOCK) {
    const int64_t n = i1 - i < BLOCK ? i1 - i : BLOCK;
    s += vsumsq(c->g + i, (int)n); /* float within a block, double across blocks */
  }
  c->part[t] = s;
}

/* Σ g[i]² over n floats. */
double rtd_sumsq(int threads, const float *g, int64_t n) {
  sumsq_ctx c = {g, {0}};
  parallel_for_aligned(threads, n, BLOCK, sumsq_range, &c);
  double s = 0;
  for (int t = 0; t < RTD_MAX_THREADS; t++) s += c.part[t];
  return s;
}

typedef struct {
  float *p, *m, *v;
  const float *g;
  float scale, step, b1, b2, eps, decay;
} adamw_ctx;

static void adamw_range(void *vctx, int64_t i0, int64_t i1, int t) {
  (void)t;
  const adamw_ctx *c = (const adamw_ctx *)vctx;
  const float scale = c->scale, step = c->step, b1 = c->b1, b2 = c->b2, eps = c->eps;
  const float decay = c->decay;
  const v8f vs = {scale, scale, scale, scale, scale, scale, scale, scale};
  const v8f vb1 = {b1, b1, b1, b1, b1, b1, b1, b1}, vb2 = {b2, b2, b2, b2, b2, b2, b2, b2};
  const float a1 = 1.f - b1, a2 = 1.f - b2;
  const v8f va1 = {a1, a1, a1, a1, a1, a1, a1, a1}, va2 = {a2, a2, a2, a2, a2, a2, a2, a2};
  const v8f vstep = {step, step, step, step, step, step, step, step};
  const v8f veps = {eps, eps, eps, eps, eps, eps, eps, eps};
  const v8f vdec = {decay, decay, decay, decay, decay, decay, decay, decay};
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    const v8f g = v8_load(c->g + i) * vs, p = v8_load(c->p + i);
    const v8f m = vb1 * v8_load(c->m + i) + va1 * g;
    const v8f v = vb2 * v8_load(c->v + i) + va2 * (g * g);
    v8f root;
    for (int k = 0; k < 8; k++) root[k] = sqrtf(v[k]);
    v8_store(c->m + i, m);
    v8_store(c->v + i, v);
    v8_store(c->p + i, p - vstep * (m / (root + veps)) - vdec * p);
  }
  for (; i < i1; i++) {
    const float g = c->g[i] * scale, p = c->p[i];
    const float m = b1 * c->m[i] + a1 * g, v = b2 * c->v[i] + a2 * (g * g);
    c->m[i] = m;
    c->v[i] = v;
    c->p[i] = p - step * (m / (sqrtf(v) + eps)) - decay * p;
  }
}

/* One AdamW update of n floats of p, m and v in place from g · scale (see the file comment). */
void rtd_adamw(int threads, int64_t n, float *p, const float *g, float *m, float *v, float scale,
               float step, float b1, float b2, float eps, float decay) {
  adamw_ctx c = {p, m, v, g, scale, step, b1, b2, eps, decay};
  parallel_for_aligned(threads, n, BLOCK, adamw_range, &c);
}
