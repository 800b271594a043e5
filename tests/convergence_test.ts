/**
 * Tests for mod/sae/convergence.ts: the last-fifth change of a logged metric on known series.
 *
 * @module
 */
import { lastFifthChange } from "../mod/sae/mod.ts";
import { assert, assertAlmostEquals, assertThrows } from "./assert.ts";

const steps = Array.from({ length: 50 }, (_, i) => 20 * (i + 1)); // 20 .. 1000

Deno.test("a constant metric has changed 0 over the last fifth", () => {
  assertAlmostEquals(lastFifthChange(steps, steps.map(() => 3)), 0, 1e-12);
});

Deno.test("a metric falling linearly from 2 to 1: the halves of steps 820-1000 differ by known amounts", () => {
  const v = steps.map((s) => 2 - s / 1000);
  // Window: steps 820..1000 (10 values); first half 820..900 (mean 1.14), second 920..1000 (1.04).
  assertAlmostEquals(lastFifthChange(steps, v), (1.04 - 1.14) / 1.14, 1e-9);
});

Deno.test("too few values in the last fifth, or mismatched lengths", () => {
  assert(Number.isNaN(lastFifthChange([10, 1000], [1, 2])));
  assert(Number.isNaN(lastFifthChange([], [])));
  assertThrows(() => lastFifthChange([1, 2], [1]), /2 steps for 1 values/);
});
