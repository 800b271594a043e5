import { assert, assertAlmostEquals, assertEquals } from "../assert.ts";
import { agreement, floorFor, meanSd } from "./sae_recipe_compare.ts";

Deno.test("recipe compare: mean and sample SD, 0 for one run", () => {
  assertEquals(meanSd([2]), { mean: 2, sd: 0, n: 1 });
  const m = meanSd([1, 2, 3]);
  assertAlmostEquals(m.mean, 2, 1e-12);
  assertAlmostEquals(m.sd, 1, 1e-12);
});

Deno.test("recipe compare: floors per metric", () => {
  assertEquals(floorFor("fve", 64, 0.5, 0.6), 0.02);
  assertEquals(floorFor("l0", 64, 2, 4), 1);
  assertAlmostEquals(floorFor("l0", 64, 40, 60), 5, 1e-12);
  assertEquals(floorFor("dead_fraction", 64, 1, 1), 0.02);
  assertAlmostEquals(floorFor("dead_fraction", 64, 0.5, 0.5), 2 * Math.sqrt(0.25 / 64), 1e-12);
});

Deno.test("recipe compare: agree within 2 pooled SDs, else the floor", () => {
  // Pooled SD of [0.5, 0.6, 0.7] and [0.6, 0.7, 0.8] is 0.1: tolerance 0.2 ≥ |Δ| = 0.1.
  const a = agreement("fve", 64, [0.5, 0.6, 0.7], [0.6, 0.7, 0.8]);
  assertAlmostEquals(a.pooled, 0.1, 1e-12);
  assertAlmostEquals(a.tolerance, 0.2, 1e-12);
  assert(a.agree);
  // One run each: no spread, so the floor (0.02) decides.
  assert(agreement("fve", 64, [0.50], [0.51]).agree);
  assert(!agreement("fve", 64, [0.50], [0.53]).agree);
  assert(!agreement("l0", 64, [10, 10.1], [20, 20.1]).agree);
});
