/**
 * A native BLAS (OpenBLAS, or Apple's Accelerate) through Deno's FFI: single-precision GEMM,
 * row-major, on Float32Arrays or raw pointers. Optional at run time: loadBlas() never throws, it
 * returns the reason when no library can be used.
 *
 *   const r = loadBlas();                       // RTD_BLAS_LIB, else the usual system paths
 *   if (r.blas) r.blas.sgemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n);   // C = A B
 *
 * Search order: the `path` option, else $RTD_BLAS_LIB (read only where env access to it is
 * granted; "off" disables BLAS), else, on Linux, libopenblas.so.0 in the Debian/Ubuntu multiarch
 * folders (x86_64, aarch64; the plain name, then the openblas-pthread/ and openblas-openmp/
 * variants) and the usual Fedora/Arch paths, then libblas.so.3 only where it is OpenBLAS (it
 * exports openblas_get_config): the reference BLAS is about 30x slower and would make things worse
 * than XNNPACK; on macOS, Accelerate, then Homebrew's OpenBLAS. An explicit path (option or env)
 * that fails is reported, not replaced by a search.
 *
 * Permissions: --allow-ffi, unscoped (pointer calls need it: --allow-ffi=<library path> is not
 * enough, and is reported as missing permission); --allow-read lets the search skip
 * missing paths by stat (without it each candidate is simply tried with dlopen); --allow-env
 * (or --allow-env=RTD_BLAS_LIB) for the variable. Permissions are queried, never prompted for.
 *
 * Threads: OpenBLAS runs sgemm on its own pthreads; setThreads() sets their number (the calling
 * thread blocks until the product is done, so nothing else runs on the heap meanwhile).
 *
 * @module
 */
import { errorText } from "../io/mod.ts";

const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32", // order
      "i32", // transA
      "i32", // transB
      "i32", // M
      "i32", // N
      "i32", // K
      "f32", // alpha
      "pointer", // A
      "i32", // lda
      "pointer", // B
      "i32", // ldb
      "f32", // beta
      "pointer", // C
      "i32", // ldc
    ],
    result: "void",
  },
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
} as const;

type BlasLib = Deno.DynamicLibrary<typeof SYMBOLS>;

/**
 * GEMM, row-major: C = alpha op(A) op(B) + beta C, op(X) = X or Xᵀ, with A, B and C held as `M`
 * (raw pointers or Float32Arrays) and lda, ldb, ldc their row strides.
 */
export type Gemm<M> = (
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: M,
  lda: number,
  b: M,
  ldb: number,
  beta: number,
  c: M,
  ldc: number,
) => void;

/** Raw pointer-level GEMM: no checks at all, a wrong size reads or writes outside the buffers. */
export type SgemmPtr = Gemm<Deno.PointerValue>;

/** GEMM on Float32Arrays, with the sizes checked against the arrays' lengths. */
export type Sgemm = Gemm<Float32Array>;

/** A loaded BLAS library. */
export interface Blas {
  /** The path it was opened from. */
  path: string;
  /** "OpenBLAS 0.3.21 ... Haswell MAX_THREADS=64", "Accelerate", or "unknown cblas" */
  config: string;
  /** Whether it is OpenBLAS (has openblas_get_config). */
  openblas: boolean;
  /** GEMM on raw pointers: no checks at all, a wrong size reads or writes outside the buffers. */
  sgemmPtr: SgemmPtr;
  /** GEMM on Float32Arrays, row-major, with the sizes checked against the arrays' lengths. */
  sgemm: Sgemm;
  /** Sets OpenBLAS's thread count; returns false where the library has no such call. */
  setThreads(n: number): boolean;
  /** OpenBLAS's thread count, or null where unknown. */
  threads(): number | null;
}

export type BlasLoad = { blas: Blas; reason?: undefined } | { blas: null; reason: string };

export interface LoadBlasOptions {
  /** Open this library and no other (overrides RTD_BLAS_LIB). */
  path?: string;
  /** Search these paths instead of blasCandidates() (for tests). */
  candidates?: string[];
}

const ENV_VAR = "RTD_BLAS_LIB";

/** The command that installs a native BLAS where none was found (README: set-up). */
export const BLAS_FIX =
  "bash tasks/setup.sh (or Debian/Ubuntu: sudo apt-get install -y libopenblas0-pthread)";
const loaded = new Map<string, Blas>();

/** Candidate paths for this OS, in order of preference. */
export function blasCandidates(os: string = Deno.build.os): string[] {
  if (os === "darwin") {
    return [
      "/System/Library/Frameworks/Accelerate.framework/Accelerate",
      "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
      "/usr/local/opt/openblas/lib/libopenblas.dylib",
    ];
  }
  if (os !== "linux") return [];
  const out: string[] = [];
  for (const dir of ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"]) {
    out.push(
      `${dir}/libopenblas.so.0`,
      `${dir}/openblas-pthread/libopenblas.so.0`,
      `${dir}/openblas-openmp/libopenblas.so.0`,
    );
  }
  out.push("/usr/lib64/libopenblasp.so.0", "/usr/lib64/libopenblas.so.0");
  out.push("/usr/lib/libopenblas.so.0", "/usr/lib/libopenblas.so");
  // Only accepted when it is OpenBLAS behind the alternatives link (see openOne).
  for (const dir of ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"]) {
    out.push(`${dir}/libblas.so.3`);
  }
  return out;
}

function granted(desc: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(desc).state === "granted";
  } catch {
    return false;
  }
}

function envPath(): string | undefined {
  if (!granted({ name: "env", variable: ENV_VAR })) return undefined;
  return Deno.env.get(ENV_VAR) || undefined;
}

/** False only where we may stat the path and it is not there. */
function mayExist(path: string): boolean {
  if (!granted({ name: "read", path })) return true;
  try {
    Deno.statSync(path);
    return true;
  } catch {
    // Accelerate lives in the dyld shared cache on recent macOS: no file, yet dlopen works.
    return path.includes(".framework/");
  }
}

/** Deno repeats its own prefix ("Could not open library: Could not open library: ..."). */
function dlopenErrorText(e: unknown): string {
  return errorText(e).replace(/^(Could not open library: )+/, "");
}

/** Opens one library; `requireOpenBlas` rejects a BLAS that is not OpenBLAS (libblas.so.3). */
function openOne(path: string, requireOpenBlas: boolean): BlasLoad {
  const cached = loaded.get(path);
  if (cached) return { blas: cached };
  let lib: BlasLib;
  try {
    lib = Deno.dlopen(path, SYMBOLS);
  } catch (e) {
    return { blas: null, reason: `cannot load "${path}": ${dlopenErrorText(e)}` };
  }
  const s = lib.symbols;
  const openblas = s.openblas_get_config !== null;
  if (requireOpenBlas && !openblas) {
    lib.close();
    return { blas: null, reason: `"${path}" is not OpenBLAS (the reference BLAS is too slow)` };
  }
  const blas = makeBlas(lib, path, openblas);
  loaded.set(path, blas);
  return { blas };
}

function makeBlas(lib: BlasLib, path: string, openblas: boolean): Blas {
  const s = lib.symbols;
  let config = path.includes("Accelerate") ? "Accelerate" : "unknown cblas";
  if (openblas) {
    const p = s.openblas_get_config!();
    config = p ? Deno.UnsafePointerView.getCString(p).trim() : "OpenBLAS";
  }
  const sgemmPtr: SgemmPtr = (ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) =>
    s.cblas_sgemm(
      ROW_MAJOR,
      ta ? TRANS : NO_TRANS,
      tb ? TRANS : NO_TRANS,
      m,
      n,
      k,
      alpha,
      a,
      lda,
      b,
      ldb,
      beta,
      c,
      ldc,
    );
  return {
    path,
    config,
    openblas,
    sgemmPtr,
    sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
      checkDims(m, n, k);
      if (m === 0 || n === 0) return;
      checkOperand("C", c, m, n, ldc);
      if (k === 0) {
        // BLAS leaves C alone when k = 0 only if beta is 1; do what the product means.
        for (let i = 0; i < m; i++) {
          const row = c.subarray(i * ldc, i * ldc + n);
          if (beta === 0) row.fill(0);
          else for (let j = 0; j < n; j++) row[j] *= beta;
        }
        return;
      }
      // Stored shapes: A is [m,k] (or [k,m] transposed), B [k,n] (or [n,k]).
      checkOperand("A", a, ta ? k : m, ta ? m : k, lda);
      checkOperand("B", b, tb ? n : k, tb ? k : n, ldb);
      sgemmPtr(
        ta,
        tb,
        m,
        n,
        k,
        alpha,
        Deno.UnsafePointer.of(a),
        lda,
        Deno.UnsafePointer.of(b),
        ldb,
        beta,
        Deno.UnsafePointer.of(c),
        ldc,
      );
    },
    setThreads(n: number): boolean {
      if (!Number.isInteger(n) || n < 1) {
        throw new Error(`BLAS thread count ${n} is not a positive integer`);
      }
      if (!s.openblas_set_num_threads) return false;
      s.openblas_set_num_threads(n);
      return true;
    },
    threads(): number | null {
      return s.openblas_get_num_threads ? s.openblas_get_num_threads() : null;
    },
  };
}

function checkDims(m: number, n: number, k: number): void {
  for (const [name, v] of [["M", m], ["N", n], ["K", k]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
      throw new Error(`sgemm ${name} = ${v} is not an integer from 0 to 2^31-1`);
    }
  }
}

function checkOperand(name: string, x: Float32Array, rows: number, cols: number, ld: number) {
  if (!Number.isInteger(ld) || ld < Math.max(1, cols)) {
    throw new Error(`sgemm leading dimension of ${name} ${ld} is below its ${cols} columns`);
  }
  const need = rows === 0 ? 0 : (rows - 1) * ld + cols;
  if (x.length < need) {
    throw new Error(
      `sgemm ${name} holds ${x.length} floats; [${rows},${cols}] with stride ${ld} needs ${need}`,
    );
  }
}

/**
 * Finds and opens a BLAS library (see the module doc for the order). Never throws: without
 * --allow-ffi, or when nothing usable is found, `blas` is null and `reason` says why.
 */
export function loadBlas(opts: LoadBlasOptions = {}): BlasLoad {
  // Pointer calls (UnsafePointer.of, getCString) need FFI permission for everything: a
  // path-scoped --allow-ffi=<lib> opens the library but fails at the first product.
  if (!granted({ name: "ffi" })) {
    return { blas: null, reason: "no FFI permission (run with --allow-ffi, without a path list)" };
  }
  const explicit = opts.path ?? envPath();
  if (explicit !== undefined) {
    if (explicit === "off") return { blas: null, reason: `${ENV_VAR}=off` };
    const r = openOne(explicit, false);
    if (r.blas) return r;
    const from = opts.path !== undefined ? "" : `${ENV_VAR}: `;
    return { blas: null, reason: from + r.reason };
  }
  const notOpenBlas: string[] = [];
  let failure: string | null = null;
  for (const path of opts.candidates ?? blasCandidates()) {
    if (!mayExist(path)) continue;
    const r = openOne(path, path.endsWith("libblas.so.3"));
    if (r.blas) return r;
    if (r.reason.includes("is not OpenBLAS")) notOpenBlas.push(path);
    else failure ??= r.reason;
  }
  const os = Deno.build.os;
  const what = os === "darwin"
    ? "Accelerate or OpenBLAS"
    : os === "linux"
    ? "OpenBLAS not found (libopenblas.so.0)"
    : `no BLAS known for ${os}`;
  let reason = os === "darwin" ? `${what} not found` : what;
  if (notOpenBlas.length > 0) reason += `; ${notOpenBlas.join(", ")} is not OpenBLAS`;
  if (failure !== null) reason += `; ${failure}`;
  return { blas: null, reason };
}

/** The first library loadBlas() opened, or null. */
export function loadedBlas(): Blas | null {
  for (const b of loaded.values()) return b;
  return null;
}

/** GEMM on Float32Arrays with the default library (loadBlas()); throws when there is none. */
export const sgemm: Sgemm = (...args) => requireBlas().sgemm(...args);

/** GEMM on raw pointers with the default library (loadBlas()); throws when there is none. */
export const sgemmPtr: SgemmPtr = (...args) => requireBlas().sgemmPtr(...args);

function requireBlas(): Blas {
  const ready = loadedBlas();
  if (ready) return ready;
  const r = loadBlas();
  if (!r.blas) throw new Error(`No BLAS library: ${r.reason}`);
  return r.blas;
}
