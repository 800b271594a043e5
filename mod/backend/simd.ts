/**
 * Two vector kernels in WebAssembly SIMD (f32x4) for host loops that tfjs has no op for: the
 * sparse SAE gradients (mod/sae/sparse.ts) run a dot product or an axpy per nonzero of f, D floats
 * each. V8 runs the same loops in JavaScript at about 1 GFLOP/s; these run 4 lanes at a time.
 *
 * The module is assembled here from its bytes (no build step, no binary in the repository) and
 * owns one linear memory; callers lay out their arrays in it with `reserve()` and `view()`, pass
 * byte offsets, and keep the memory between calls (it grows, never shrinks), so repeated calls
 * neither allocate nor fault in fresh pages.
 *
 *   const k = simdKernels();
 *   k.reserve(bytes);                          // before taking views: growing detaches them
 *   const y = k.view(0, n), x = k.view(4 * n, n);
 *   k.axpy(0, 4 * n, 2.5, n);                  // y += 2.5 x
 *   k.dot(0, 4 * n, n);                        // Σ y·x
 *
 * `n` must be a multiple of 4 and offsets multiples of 16 (`SIMD_WIDTH`, `align16`).
 * `scalarKernels()` is the same interface in plain JavaScript, for any `n` and offsets that are
 * multiples of 4.
 *
 * @module
 */

/** Floats per SIMD lane group: lengths passed to the kernels must be multiples of it. */
export const SIMD_WIDTH = 4;

/** The kernels and their memory. */
export interface SimdKernels {
  /** y[0..n) += a * x[0..n); y and x are byte offsets. */
  axpy(y: number, x: number, a: number, n: number): void;
  /** Σ a[i] * b[i] over [0, n); a and b are byte offsets. */
  dot(a: number, b: number, n: number): number;
  /** Grows the memory to at least `bytes` (views taken before a growth are detached). */
  reserve(bytes: number): void;
  /** A Float32Array over `n` floats of the memory at byte offset `offset`. */
  view(offset: number, n: number): Float32Array;
}

/** The next multiple of 16 at or above `bytes`. */
export function align16(bytes: number): number {
  return Math.ceil(bytes / 16) * 16;
}

const PAGE = 65536;

// Opcodes (WebAssembly core spec 2.0, SIMD proposal merged).
const I32 = 0x7f, F32 = 0x7d, V128 = 0x7b;
const BLOCK = 0x02, LOOP = 0x03, BR = 0x0c, BR_IF = 0x0d, END = 0x0b, VOID = 0x40;
const GET = 0x20, SET = 0x21, I32_CONST = 0x41, I32_ADD = 0x6a, I32_SHL = 0x74, I32_GE_U = 0x4f;
const F32_ADD = 0x92;
const SIMD = 0xfd;
const V_LOAD = [SIMD, 0x00, 4, 0], V_STORE = [SIMD, 0x0b, 4, 0]; // memarg: align 2^4, offset 0
const F4_SPLAT = [SIMD, 0x13], F4_ADD = [SIMD, 0xe4, 0x01], F4_MUL = [SIMD, 0xe6, 0x01];
const f4Lane = (lane: number) => [SIMD, 0x1f, lane];

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

const vec = (items: number[][]) => [...leb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...leb(body.length), ...body];

/** `end = start + 4 * n` into local `endLocal`; `start` and `n` are locals. */
const endOf = (start: number, n: number, endLocal: number) => [
  GET,
  start,
  GET,
  n,
  I32_CONST,
  2,
  I32_SHL,
  I32_ADD,
  SET,
  endLocal,
];

/** A loop that runs `body` while local `ptr` < local `end`, stepping the given locals by 16. */
function loop16(ptr: number, end: number, step: number[], body: number[]): number[] {
  return [
    BLOCK,
    VOID,
    LOOP,
    VOID,
    GET,
    ptr,
    GET,
    end,
    I32_GE_U,
    BR_IF,
    1,
    ...body,
    ...step.flatMap((l) => [GET, l, I32_CONST, 16, I32_ADD, SET, l]),
    BR,
    0,
    END,
    END,
  ];
}

// axpy(y i32 0, x i32 1, a f32 2, n i32 3); locals: av v128 4, end i32 5
const AXPY = [
  ...vec([[1, V128], [1, I32]]),
  GET,
  2,
  ...F4_SPLAT,
  SET,
  4,
  ...endOf(1, 3, 5),
  ...loop16(1, 5, [0, 1], [
    GET,
    0,
    GET,
    0,
    ...V_LOAD,
    GET,
    1,
    ...V_LOAD,
    GET,
    4,
    ...F4_MUL,
    ...F4_ADD,
    ...V_STORE,
  ]),
  END,
];

// dot(a i32 0, b i32 1, n i32 2) -> f32; locals: acc v128 3, end i32 4
const DOT = [
  ...vec([[1, V128], [1, I32]]),
  ...endOf(0, 2, 4),
  ...loop16(0, 4, [0, 1], [
    GET,
    3,
    GET,
    0,
    ...V_LOAD,
    GET,
    1,
    ...V_LOAD,
    ...F4_MUL,
    ...F4_ADD,
    SET,
    3,
  ]),
  GET,
  3,
  ...f4Lane(0),
  GET,
  3,
  ...f4Lane(1),
  F32_ADD,
  GET,
  3,
  ...f4Lane(2),
  GET,
  3,
  ...f4Lane(3),
  F32_ADD,
  F32_ADD,
  END,
];

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const types = vec([
    [0x60, ...vec([[I32], [I32], [F32], [I32]]), ...vec([])], // axpy
    [0x60, ...vec([[I32], [I32], [I32]]), ...vec([[F32]])], // dot
  ]);
  const exportEntry = (name: string, kind: number, index: number) => [
    ...vec([...new TextEncoder().encode(name)].map((b) => [b])),
    kind,
    ...leb(index),
  ];
  const code = vec([AXPY, DOT].map((body) => [...leb(body.length), ...body]));
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, types),
    ...section(3, vec([[0], [1]])), // function i has type i
    ...section(5, vec([[0x00, 1]])), // one memory, at least one page, no maximum
    ...section(
      7,
      vec([exportEntry("axpy", 0, 0), exportEntry("dot", 0, 1), exportEntry("mem", 2, 0)]),
    ),
    ...section(10, code),
  ]);
}

let kernels: SimdKernels | null = null;

/** The kernels (compiled once per process); throws where WebAssembly SIMD is unavailable. */
export function simdKernels(): SimdKernels {
  if (kernels) return kernels;
  const instance = new WebAssembly.Instance(new WebAssembly.Module(moduleBytes()));
  const ex = instance.exports as {
    axpy: (y: number, x: number, a: number, n: number) => void;
    dot: (a: number, b: number, n: number) => number;
    mem: WebAssembly.Memory;
  };
  const mem = ex.mem;
  const check = (n: number, ...offsets: number[]) => {
    if (n % SIMD_WIDTH !== 0) throw new Error(`SIMD kernel length ${n} is not a multiple of 4`);
    for (const o of offsets) {
      if (o % 16 !== 0 || o + 4 * n > mem.buffer.byteLength) {
        throw new Error(`SIMD kernel offset ${o} (+${4 * n} bytes) is unaligned or out of memory`);
      }
    }
  };
  kernels = {
    axpy(y, x, a, n) {
      check(n, y, x);
      ex.axpy(y, x, a, n);
    },
    dot(a, b, n) {
      check(n, a, b);
      return ex.dot(a, b, n);
    },
    reserve(bytes) {
      const have = mem.buffer.byteLength;
      if (bytes > have) mem.grow(Math.ceil((bytes - have) / PAGE));
    },
    view(offset, n) {
      return new Float32Array(mem.buffer, offset, n);
    },
  };
  return kernels;
}

let scalar: SimdKernels | null = null;

/** The same kernels as simdKernels() in plain JavaScript over a growable buffer: any `n`. */
export function scalarKernels(): SimdKernels {
  if (scalar) return scalar;
  let mem = new Float32Array(0);
  scalar = {
    axpy(y, x, a, n) {
      const yi = y / 4, xi = x / 4;
      for (let i = 0; i < n; i++) mem[yi + i] += a * mem[xi + i];
    },
    dot(a, b, n) {
      const ai = a / 4, bi = b / 4;
      let sum = 0;
      for (let i = 0; i < n; i++) sum += mem[ai + i] * mem[bi + i];
      return sum;
    },
    reserve(bytes) {
      if (bytes <= 4 * mem.length) return;
      const grown = new Float32Array(Math.ceil(bytes / 4));
      grown.set(mem);
      mem = grown;
    },
    view(offset, n) {
      return new Float32Array(mem.buffer, offset, n);
    },
  };
  return scalar;
}
