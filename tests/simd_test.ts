import { align16, scalarKernels, SIMD_WIDTH, simdKernels } from "../mod/backend/mod.ts";
import { assertAlmostEquals, assertEquals, assertThrows } from "./assert.ts";

for (const [name, kernels] of [["simd", simdKernels], ["scalar", scalarKernels]] as const) {
  Deno.test(`${name} axpy and dot give hand-computed answers`, () => {
    const k = kernels(), n = 12;
    k.reserve(2 * 4 * n);
    const y = k.view(0, n), x = k.view(4 * n, n);
    for (let i = 0; i < n; i++) [y[i], x[i]] = [i, n - i];
    k.axpy(0, 4 * n, 0.5, n); // y[i] = i + (n - i) / 2
    for (let i = 0; i < n; i++) assertEquals(y[i], i + (n - i) / 2);
    // Σ (6 + i/2)(12 - i) = Σ (72 - i²/2) over i = 0..11 = 864 - 506/2 = 611
    assertAlmostEquals(k.dot(0, 4 * n, n), 611, 1e-4);
    assertEquals(k.dot(0, 4 * n, 0), 0);
    k.reserve(8 * 4 * n); // growing keeps what was written
    assertEquals(k.view(0, 1)[0], 6);
  });
}

Deno.test("simd kernels reject lengths off the lane width, unaligned or out-of-memory offsets", () => {
  const k = simdKernels();
  k.reserve(1024);
  assertEquals(SIMD_WIDTH, 4);
  assertEquals(align16(17), 32);
  assertThrows(() => k.axpy(0, 64, 1, 6), /length 6 is not a multiple of 4/);
  assertThrows(() => k.dot(4, 64, 4), /offset 4 /);
  const end = k.view(0, 1).buffer.byteLength;
  assertThrows(() => k.axpy(end, 0, 1, 4), /out of memory/);
});
