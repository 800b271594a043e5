import {
  assert,
  assertAllClose,
  assertAlmostEquals,
  assertEquals,
  assertThrows,
} from "./assert.ts";
import {
  densityHistogram,
  densitySummary,
  featureDensities,
  log10Histogram,
} from "../mod/features/mod.ts";

Deno.test("densityHistogram() puts hand-placed densities in the bins computed by hand", () => {
  // 10M tokens: resolution 1e-7, below the 1e-6 threshold, so ultra-low is measurable.
  const counts = [0, 0, 5, 10, 100, 40_000, 1_000_000, 10_000_000];
  const h = densityHistogram(counts, 10_000_000);
  assertEquals(h.edges.length, 25, "0.25-decade edges from -6 to 0");
  assertEquals(h.edges[0], -6);
  assertEquals(h.edges[4], -5);
  assertEquals(h.edges[24], 0);
  const expected = new Array(24).fill(0);
  expected[0] = 1; // 10 / 1e7 = 1e-6 sits on the left edge -6
  expected[4] = 1; // 1e-5 → [-5, -4.75)
  expected[14] = 1; // 4e-3, log10 = -2.398 → [-2.5, -2.25)
  expected[20] = 1; // 0.1 → [-1, -0.75)
  expected[23] = 1; // density 1 → the last, closed bin
  assertEquals(h.counts, expected);
  assertEquals(h.dead, 2);
  assertEquals(h.ultraLow, 1, "5e-7 is ultra-low");
  assertEquals(h.deadOrUltraLow, 3);
  assertAlmostEquals(h.deadOrUltraLowFraction, 3 / 8, 1e-15);
  assertAlmostEquals(h.fractions[14], 1 / 8, 1e-15);
  assertEquals(h.resolution, 1e-7);
  assertEquals(h.ultraLowUnmeasurable, false);
  assert(h.note.includes("10,000,000 tokens, resolution 1/N = 1.0e-7"), h.note);
});

Deno.test("densityHistogram() flags ultra-low as unmeasurable when 1/tokens is above the threshold", () => {
  const h = densityHistogram([0, 1, 500, 0], 1000);
  assertEquals(h.resolution, 1e-3);
  assertEquals(h.ultraLowUnmeasurable, true);
  assertEquals(h.ultraLow, 0);
  assertEquals(h.dead, 2);
  assertEquals(h.edges[0], -3, "bins start at the resolution, not at an empty 1e-6");
  assertEquals(h.counts.length, 12);
  assertEquals(h.counts[0], 1, "one firing in 1000 tokens is density 1e-3");
  assertEquals(h.counts[10], 1, "0.5 → log10 -0.301 → [-0.5, -0.25)");
  assert(h.note.includes("cannot be measured"), h.note);
  assert(h.note.includes('"dead" includes features below resolution'), h.note);
});

Deno.test("densityHistogram() snaps the default left edge down to the bin grid", () => {
  // 3e5 tokens: resolution 3.3e-6, log10 -5.48 → the edge below on the 0.25 grid is -5.5.
  const h = densityHistogram([1, 3000], 300_000);
  assertEquals(h.edges[0], -5.5);
  assertEquals(h.counts[0], 1);
  assertEquals(h.underflow, 0);
});

Deno.test("densityHistogram() partitions every feature into dead, ultra-low, bins or out of range", () => {
  const counts = Array.from({ length: 1000 }, (_, i) => (i * 7919) % 20_011);
  const h = densityHistogram(counts, 20_000_000, { minLog10: -4, maxLog10: -1, bins: 6 });
  assertEquals(h.edges, [-4, -3.5, -3, -2.5, -2, -1.5, -1]);
  const inBins = h.counts.reduce((a, b) => a + b, 0);
  assertEquals(h.dead + h.ultraLow + h.underflow + h.overflow + inBins, 1000);
  assert(h.underflow > 0, "densities between 1e-6 and 1e-4 fall left of the range");
  assertAllClose(h.fractions, h.counts.map((c) => c / 1000), 1e-15);
});

Deno.test("densityHistogram() with threshold 0 bins every alive feature from the resolution up", () => {
  const h = densityHistogram([0, 1, 2], 10_000_000, { ultraLow: 0 });
  assertEquals(h.edges[0], -7);
  assertEquals(h.ultraLow, 0);
  assertEquals(h.counts[0] + h.counts[1], 2);
  assertEquals(h.ultraLowUnmeasurable, false);
});

Deno.test("density functions reject counts that are negative, above the token count or not numbers", () => {
  assertThrows(() => densityHistogram([1, -1], 10), /Firing count -1 of feature 1/);
  assertThrows(
    () => densityHistogram([11], 10),
    /Firing count 11 of feature 0 is not in \[0, 10\]/,
  );
  assertThrows(() => densitySummary([NaN], 10), /Firing count NaN/);
  assertThrows(() => featureDensities([1], 0), /Token count 0 is not a positive integer/);
  assertThrows(() => featureDensities([], 5), /Firing counts are empty/);
  assertThrows(() => densityHistogram([1], 10, { minLog10: 0 }), /range \[0, 0\]/);
});

Deno.test("densitySummary() counts dead and alive features and sums densities into the L0", () => {
  const s = densitySummary(new Float64Array([0, 0, 10, 30, 60]), 100);
  assertEquals(s.features, 5);
  assertEquals(s.dead, 2);
  assertEquals(s.alive, 3);
  assertAlmostEquals(s.deadFraction, 0.4, 1e-15);
  assertAlmostEquals(s.aliveFraction, 0.6, 1e-15);
  assertAlmostEquals(s.expectedL0, 1.0, 1e-12);
  assertAlmostEquals(s.medianDensity, 0.1, 1e-15);
  assertAlmostEquals(s.medianAliveDensity, 0.3, 1e-15);
  assertEquals(s.resolution, 0.01);
  assert(s.note.includes("cannot be measured"), "1/100 tokens cannot see 1e-6");
  const fine = densitySummary([0, 3, 50], 10_000_000);
  assertEquals(fine.ultraLow, 1);
  assertEquals(fine.alive, 2);
});

Deno.test("log10Histogram() bins positive values by decade quarters and counts zeros apart", () => {
  const h = log10Histogram([0, 1e-3, 1e-2, 0.05]);
  assertEquals(h.zeros, 1);
  assertEquals(h.edges[0], -3);
  assertEquals(h.edges.at(-1), -1.25);
  assertEquals(h.counts, [1, 0, 0, 0, 1, 0, 1]);
  assertThrows(() => log10Histogram([1, -2]), /Value -2 at index 1/);
});
