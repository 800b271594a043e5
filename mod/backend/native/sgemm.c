/* The binding of sgemm.h: rtd_bind_sgemm(path) looks up cblas_sgemm in the library at `path`. */
#include <dlfcn.h>

#include "sgemm.h"

sgemm_fn rtd_sgemm = 0;

/* Binds cblas_sgemm from the library at `path` (the one mod/backend/blas.ts opened). 1 = done. */
int rtd_bind_sgemm(const char *path) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) return 0;
  void *s = dlsym(h, "cblas_sgemm");
  if (!s) return 0;
  rtd_sgemm = (sgemm_fn)s;
  return 1;
}
