/*
 * exp on 8 floats at once (vec.h's v8f), for the softmax of ce.c: Cephes's expf in vector form.
 * exp(x) = 2^n · exp(r) with n = round(x / ln 2) and r = x − n ln 2 (ln 2 split in two constants,
 * so r is exact to float precision), |r| ≤ ln 2 / 2, exp(r) by a degree-7 polynomial; 2^n is
 * built in the exponent bits, as two factors 2^⌊n/2⌋ · 2^(n−⌊n/2⌋) so that results below the
 * smallest normal float (x down to −103.9) and the overflow to +Inf (x above 88.72) come out right
 * without a branch. Within 2 ulp of the correctly rounded exp on [−87, 88] (tests/native_ce_test.ts
 * checks it against Math.exp); NaN gives NaN, x below −103.97 (−Inf too) gives 0, +Inf gives
 * +Inf.
 *
 * Rounding uses the 1.5 · 2^23 trick (adding it leaves the nearest integer in the low mantissa
 * bits), so no float-to-int conversion is needed and the whole thing stays in vector extensions.
 */
#ifndef RTD_VEXP_H
#define RTD_VEXP_H
#include "vec.h"

static inline v8f v8_splat(float a) { return (v8f){a, a, a, a, a, a, a, a}; }

/* m ? a : b, lane by lane (m: all-ones or all-zeros per lane, as vector comparisons give). */
static inline v8f v8_select(v8i m, v8f a, v8f b) {
  return (v8f)(((v8i)a & m) | ((v8i)b & ~m));
}

static inline v8f v8_exp(v8f x) {
  const v8f lo = v8_splat(-103.97f), hi = v8_splat(88.8f);
  const v8f magic = v8_splat(12582912.0f); /* 1.5 · 2^23 */
  v8f xc = v8_select(x < lo, lo, x);
  xc = v8_select(xc > hi, hi, xc);
  v8f t = xc * v8_splat(1.44269504088896341f) + magic;
  v8f n = t - magic;
  v8i ni = (v8i)t - (v8i)magic;
  v8f r = xc - n * v8_splat(0.693359375f);
  r = r - n * v8_splat(-2.12194440e-4f);
  v8f p = v8_splat(1.9875691500e-4f);
  p = p * r + v8_splat(1.3981999507e-3f);
  p = p * r + v8_splat(8.3334519073e-3f);
  p = p * r + v8_splat(4.1665795894e-2f);
  p = p * r + v8_splat(1.6666665459e-1f);
  p = p * r + v8_splat(5.0000001201e-1f);
  p = p * (r * r) + r + v8_splat(1.0f);
  v8i h = ni >> 1, rest = ni - h;
  v8f s1 = (v8f)((h + 127) << 23), s2 = (v8f)((rest + 127) << 23);
  v8f y = v8_select(x < lo, v8_splat(0.f), (p * s1) * s2);
  return v8_select(x != x, x, y);
}

/* Up to 8 floats at p (the tail of a row) as a vector, the lanes past n set to `pad`. */
static inline v8f v8_load_tail(const float *p, int n, float pad) {
  float buf[8] = {pad, pad, pad, pad, pad, pad, pad, pad};
  memcpy(buf, p, (size_t)n * sizeof(float));
  return v8_load(buf);
}

static inline void v8_store_tail(float *p, v8f v, int n) {
  float buf[8];
  v8_store(buf, v);
  memcpy(p, buf, (size_t)n * sizeof(float));
}

#endif
