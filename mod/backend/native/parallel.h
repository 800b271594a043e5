/*
 * Fork-join over a range with plain pthreads: parallel_for(threads, n, fn, ctx) runs
 * fn(ctx, begin, end, t) on `threads` contiguous slices of [0, n), slice t on thread t (slice 0 on
 * the calling thread), and returns when all are done. Threads are created per call: a few tens of
 * microseconds, against kernels that run for milliseconds, and no idle thread spins between calls
 * (OpenBLAS's own threads need the cores in between).
 *
 * `align` rounds slice boundaries to a multiple of it (tiles of features), except the last.
 */
#ifndef RTD_PARALLEL_H
#define RTD_PARALLEL_H
#include <pthread.h>
#include <stdint.h>

#define RTD_MAX_THREADS 64

typedef void (*rtd_range_fn)(void *ctx, int64_t begin, int64_t end, int t);

static inline int rtd_clamp_threads(int threads) {
  if (threads < 1) return 1;
  return threads > RTD_MAX_THREADS ? RTD_MAX_THREADS : threads;
}

typedef struct {
  rtd_range_fn fn;
  void *ctx;
  int64_t begin, end;
  int t;
} rtd_slice;

static void *rtd_slice_main(void *arg) {
  rtd_slice *s = (rtd_slice *)arg;
  s->fn(s->ctx, s->begin, s->end, s->t);
  return 0;
}

/* Slice t of [0, n) split `threads` ways, boundaries rounded down to multiples of `align`. */
static inline int64_t rtd_bound(int64_t n, int threads, int t, int64_t align) {
  if (t >= threads) return n;
  int64_t b = n * t / threads;
  b -= b % align;
  return b;
}

static inline void parallel_for_aligned(int threads, int64_t n, int64_t align, rtd_range_fn fn,
                                        void *ctx) {
  threads = rtd_clamp_threads(threads);
  if (align < 1) align = 1;
  if (threads > 1 && n < 2 * align) threads = 1;
  if (threads == 1) {
    fn(ctx, 0, n, 0);
    return;
  }
  rtd_slice slices[RTD_MAX_THREADS];
  pthread_t ids[RTD_MAX_THREADS];
  int started[RTD_MAX_THREADS] = {0};
  for (int t = 0; t < threads; t++) {
    slices[t] = (rtd_slice){fn, ctx, rtd_bound(n, threads, t, align),
                            rtd_bound(n, threads, t + 1, align), t};
  }
  for (int t = 1; t < threads; t++) {
    started[t] = pthread_create(&ids[t], 0, rtd_slice_main, &slices[t]) == 0;
    if (!started[t]) rtd_slice_main(&slices[t]); /* no thread: run it here */
  }
  rtd_slice_main(&slices[0]);
  for (int t = 1; t < threads; t++) {
    if (started[t]) pthread_join(ids[t], 0);
  }
}

static inline void parallel_for(int threads, int64_t n, rtd_range_fn fn, void *ctx) {
  parallel_for_aligned(threads, n, 1, fn, ctx);
}

#endif
