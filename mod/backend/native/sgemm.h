/*
 * cblas_sgemm as the kernels call it: bound once at run time (rtd_bind_sgemm, sgemm.c) from the
 * library that mod/backend/blas.ts opened, so that the native kernels and tfjs's matmuls share one
 * OpenBLAS and its threads, and the library links against no BLAS of its own.
 */
#ifndef RTD_SGEMM_H
#define RTD_SGEMM_H

#define ROW_MAJOR 101
#define NO_TRANS 111
#define TRANS 112

typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta, float *c,
                         int ldc);

/* Null until rtd_bind_sgemm succeeds; kernels that need it return -2 while it is. */
extern sgemm_fn rtd_sgemm;

#endif
