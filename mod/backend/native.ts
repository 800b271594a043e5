/**
 * The project's own native kernels (mod/backend/native/*.c, built by tasks/build_native.sh into
 * mod/backend/native/build/librtd_native.so) through Deno's FFI. Optional at run time, like
 * OpenBLAS: loadNative() never throws, it returns the reason when the library cannot be used.
 *
 *   const r = loadNative();     // RTD_NATIVE_LIB, else the built library; "off" disables
 *   if (r.native) r.native.symbols.rtd_sae_grads(...);
 *
 * The loader recomputes the hash of the sources (every .c and .h in mod/backend/native, sorted
 * by name, concatenated; the build script computes the same) and refuses a library built from
 * other sources: after a change to a kernel, calling the old binary with new arguments would
 * read or write the wrong memory.
 *
 * Permissions: --allow-ffi (unscoped: heap pointers need it), --allow-read of the sources (for
 * the hash), --allow-env=RTD_NATIVE_LIB to honour that variable.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { errorText } from "../io/mod.ts";
import { blasStatus } from "./blas_kernels.ts";

/** Every exported function of the library, as Deno's FFI declares them. */
export const NATIVE_SYMBOLS = {
  rtd_source_hash: { parameters: [], result: "pointer" },
  rtd_bind_sgemm: { parameters: ["buffer"], result: "i32" },
  rtd_ws_new: { parameters: [], result: "pointer" },
  rtd_ws_free: { parameters: ["pointer"], result: "void" },
  rtd_sae_grads: {
    parameters: [
      "pointer", // workspace
      "i32", // threads
      "i32", // M
      "i32", // D
      "i32", // F
      "i32", // k (0: ReLU)
      "i64", // batch_k (0: not BatchTopK)
      "f32", // norm
      "f32", // lambda
      "i32", // first
      "pointer", // x
      "pointer", // W_enc
      "pointer", // b_enc
      "pointer", // W_dec
      "pointer", // b_dec
      "f32", // dense_above
      "buffer", // out: Float64Array(5)
    ],
    result: "i32",
  },
  rtd_sae_update: {
    parameters: [
      "pointer", // workspace
      "i32", // threads
      "i32", // D
      "i32", // F
      "pointer", // W_enc
      "pointer", // b_enc
      "pointer", // W_dec
      "pointer", // b_dec
      "pointer", // m W_enc
      "pointer", // v W_enc
      "pointer", // m b_enc
      "pointer", // v b_enc
      "pointer", // m W_dec
      "pointer", // v W_dec
      "pointer", // m b_dec
      "pointer", // v b_dec
      "f32", // step size
      "f32", // beta1
      "f32", // beta2
      "f32", // eps
      "f32", // step
      "pointer", // last fired
    ],
    result: "i32",
  },
  rtd_sae_fire: { parameters: ["pointer"], result: "pointer" },
  rtd_sae_timings: { parameters: ["buffer"], result: "i32" },
  rtd_sae_encode: {
    parameters: [
      "pointer", // workspace
      "i32", // threads
      "i32", // M
      "i32", // D
      "i32", // F
      "i32", // k (0: ReLU)
      "pointer", // x
      "pointer", // W_enc
      "pointer", // b_enc
      "pointer", // b_dec
      "pointer", // per-feature thresholds (null: thr_all)
      "f32", // thr_all (0: ReLU)
      "pointer", // gated: magnitude scale exp(r_mag) (null: not gated)
      "pointer", // gated: b_mag
    ],
    result: "i64",
  },
  rtd_ws_csr: { parameters: ["pointer", "buffer"], result: "void" },
  rtd_ce_timings: { parameters: ["buffer"], result: "i32" },
  rtd_sumsq: { parameters: ["i32", "pointer", "i64"], result: "f64" },
  rtd_adamw: {
    parameters: [
      "i32", // threads
      "i64", // n
      "pointer", // p
      "pointer", // g
      "pointer", // m
      "pointer", // v
      "f32", // gradient scale (clip)
      "f32", // step size
      "f32", // beta1
      "f32", // beta2
      "f32", // eps
      "f32", // decay (lr * weight decay, or 0)
    ],
    result: "void",
  },
  rtd_exp_f32: { parameters: ["buffer", "buffer", "i64"], result: "void" },
  rtd_ce_forward: {
    parameters: [
      "i32", // threads
      "i32", // N
      "i32", // D
      "i32", // V
      "i32", // rows per block
      "pointer", // x
      "pointer", // W_U
      "pointer", // b_U
      "pointer", // targets (int32)
      "pointer", // out: loss [N]
      "pointer", // out: aux [N]: 1 / row sum (store) or log-sum-exp
      "pointer", // block: exp(l - max) [N, V] (store) or scratch [rows, V]
      "i32", // store
    ],
    result: "i32",
  },
  rtd_ce_backward: {
    parameters: [
      "i32", // threads
      "i32", // N
      "i32", // D
      "i32", // V
      "i32", // rows per block
      "pointer", // x
      "pointer", // W_U
      "pointer", // b_U
      "pointer", // targets (int32)
      "pointer", // aux [N] from the forward
      "pointer", // dy (scalar)
      "pointer", // block from the forward [N, V] (store; overwritten) or scratch [rows, V]
      "i32", // store
      "pointer", // scratch: column sums [threads, V]
      "pointer", // out: dx [N, D]
      "pointer", // out: dW [D, V]
      "pointer", // out: db [V]
    ],
    result: "i32",
  },
  rtd_sae_sse: {
    parameters: [
      "pointer", // workspace (holding the last encode's CSR)
      "i32", // threads
      "i32", // M
      "i32", // D
      "pointer", // x
      "pointer", // W_dec
      "pointer", // b_dec
      "buffer", // out: [Σ‖x − x̂‖²]
    ],
    result: "i32",
  },
} as const;

export type NativeLib = Deno.DynamicLibrary<typeof NATIVE_SYMBOLS>;

export interface Native {
  path: string;
  symbols: NativeLib["symbols"];
}

export type NativeLoad = { native: Native; reason?: undefined } | {
  native: null;
  reason: string;
};

const ENV_VAR = "RTD_NATIVE_LIB";
const SOURCES = new URL("./native/", import.meta.url);
/** Where tasks/build_native.sh writes the library. */
export const NATIVE_LIB_PATH = decodeURIComponent(
  new URL("./native/build/librtd_native.so", import.meta.url).pathname,
);
/** The command that builds it. */
export const NATIVE_FIX = "bash tasks/build_native.sh (needs a C compiler: apt-get install gcc)";

let cached: NativeLoad | null = null;

/**
 * Threads for the native kernels: OpenBLAS's count where it runs (initBackend sets it to the
 * backend's), else the number of cores.
 */
export function nativeThreads(): number {
  return blasStatus().threads ?? navigator.hardwareConcurrency ?? 1;
}

function granted(desc: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(desc).state === "granted";
  } catch {
    return false;
  }
}

/** sha256 of every .c and .h file of mod/backend/native, sorted by name, concatenated. */
export function nativeSourceHash(): string {
  const names: string[] = [];
  for (const e of Deno.readDirSync(SOURCES)) {
    if (e.isFile && /\.(c|h)$/.test(e.name)) names.push(e.name);
  }
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const h = createHash("sha256");
  for (const n of names) h.update(Deno.readFileSync(new URL(n, SOURCES)));
  return h.digest("hex");
}

/** Opens the library once per process (RTD_NATIVE_LIB overrides the path; "off" disables). */
export function loadNative(): NativeLoad {
  if (cached) return cached;
  cached = open();
  return cached;
}

function open(): NativeLoad {
  const env = granted({ name: "env", variable: ENV_VAR }) ? Deno.env.get(ENV_VAR) : undefined;
  if (env === "off") return { native: null, reason: `${ENV_VAR}=off` };
  const path = env || NATIVE_LIB_PATH;
  if (!granted({ name: "ffi" })) return { native: null, reason: "no --allow-ffi" };
  try {
    Deno.statSync(path);
  } catch {
    return { native: null, reason: `native kernels not built (${path} missing)` };
  }
  let lib: NativeLib;
  try {
    lib = Deno.dlopen(path, NATIVE_SYMBOLS);
  } catch (e) {
    const text = errorText(e).replace(/^(Could not open library: )+/, "");
    return { native: null, reason: `cannot load "${path}": ${text}` };
  }
  const p = lib.symbols.rtd_source_hash();
  const built = p ? Deno.UnsafePointerView.getCString(p) : "";
  let want: string;
  try {
    want = nativeSourceHash();
  } catch (e) {
    lib.close();
    return { native: null, reason: `cannot read the kernel sources: ${errorText(e)}` };
  }
  if (built !== want) {
    lib.close();
    return {
      native: null,
      reason: `${path} was built from other sources than mod/backend/native/ (rebuild it)`,
    };
  }
  return { native: { path, symbols: lib.symbols } };
}
