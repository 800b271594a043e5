/*
 * What the loader (mod/backend/native.ts) checks before it uses the library: the hash of the
 * sources it was built from (tasks/build_native.sh passes it in), so that a library left over from
 * older sources is reported instead of called with arguments it does not expect.
 */
#ifndef RTD_SOURCE_HASH
#define RTD_SOURCE_HASH "unknown"
#endif

const char *rtd_source_hash(void) { return RTD_SOURCE_HASH; }
