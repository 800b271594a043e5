/*
 * D-long vector loops written with GCC/Clang vector extensions (8 floats: one AVX register, two
 * SSE or NEON ones), because a float sum is not reassociated by the compiler without -ffast-math
 * and a plain dot-product loop would stay scalar. Any length and alignment; the tail runs scalar.
 */
#ifndef RTD_VEC_H
#define RTD_VEC_H
#include <stdint.h>
#include <string.h>

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

static inline v8f v8_load(const float *p) {
  v8f v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void v8_store(float *p, v8f v) { memcpy(p, &v, sizeof v); }
static inline float v8_sum(v8f v) {
  return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

/* Σ a[i] b[i]. */
static inline float vdot(const float *a, const float *b, int n) {
  v8f s0 = {0}, s1 = {0};
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 += v8_load(a + i) * v8_load(b + i);
    s1 += v8_load(a + i + 8) * v8_load(b + i + 8);
  }
  for (; i + 8 <= n; i += 8) s0 += v8_load(a + i) * v8_load(b + i);
  float s = v8_sum(s0 + s1);
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

/* y += a x. */
static inline void vaxpy(float *y, float a, const float *x, int n) {
  const v8f av = {a, a, a, a, a, a, a, a};
  int i = 0;
  for (; i + 8 <= n; i += 8) v8_store(y + i, v8_load(y + i) + av * v8_load(x + i));
  for (; i < n; i++) y[i] += a * x[i];
}

/* Σ a[i]². */
static inline float vsumsq(const float *a, int n) { return vdot(a, a, n); }

#endif
