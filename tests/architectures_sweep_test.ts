/**
 * Tests for the architecture dimension of the sweep, end to end on the test preset: one activation
 * pass trains relu, topk and gated SAEs (sae.architectures), then the features, scaling and report
 * stages group by architecture: folder names, the summary's architecture and sparsity columns,
 * features_summary by name, scaling.parquet and scaling_fits.parquet per architecture, and the
 * report's Architecture menu with a data file per browsed SAE.
 *
 *   deno test -A tests/architectures_sweep_test.ts
 *
 * @module
 */
import { assert, assertEquals } from "./assert.ts";
import { readParquet } from "../mod/io/mod.ts";
import { runTask, TEST_PRESET_ARGS } from "./helpers.ts";

const ARGS = [
  ...TEST_PRESET_ARGS,
  "--set",
  "sae.architectures=relu,topk,gated",
  // The test preset's gated λ 1 leaves no feature alive in 32 steps; 0.1 keeps some.
  "--set",
  "sae.gatedL1Coefficient=0.1",
];

function strings(t: Awaited<ReturnType<typeof readParquet>>, c: string): string[] {
  return Array.from(t.getChild(c)!.toArray() as ArrayLike<string>, String);
}

Deno.test("relu, topk and gated from one pass: folders, summary, scaling fits and report per architecture", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rtd-archs-" });
  try {
    const out = await runTask("report", ARGS, undefined, dir);
    assertEquals(out.code, 0, out.stderr);
    const sae = `${dir}/results/test/sae`;
    const names = [
      "f64",
      "f128",
      "f64-topk-independent-r0",
      "f128-topk-independent-r0",
      "f64-gated-independent-r0",
      "f128-gated-independent-r0",
    ];
    const summary = await readParquet(`${sae}/summary.parquet`);
    assertEquals(strings(summary, "name"), names);
    assertEquals(strings(summary, "architecture"), [
      ...["relu", "relu", "topk", "topk", "gated", "gated"],
    ]);
    assertEquals(strings(summary, "sparsity_key"), [
      ...["sae.l1Coefficient", "sae.l1Coefficient", "sae.k", "sae.k"],
      ...["sae.gatedL1Coefficient", "sae.gatedL1Coefficient"],
    ]);
    // Paired: each architecture starts from the same seed at a size.
    const seeds = Array.from(summary.getChild("seed")!.toArray() as Int32Array);
    assertEquals(seeds.slice(2, 4), seeds.slice(0, 2));
    // TopK's held-out L0 is at most k = 32.
    const l0 = Array.from(summary.getChild("l0")!.toArray() as Float64Array);
    assert(l0[2] <= 32 && l0[3] <= 32, `topk L0 ${l0.slice(2, 4)}`);
    // The features stage read every architecture's first-init replicate 0.
    const feats = await readParquet(`${sae}/features_summary.parquet`);
    assertEquals(strings(feats, "name"), names);
    for (const n of names) await Deno.stat(`${sae}/${n}/examples.parquet`);

    const scaling = await readParquet(`${dir}/results/test/scaling.parquet`);
    assertEquals(
      strings(scaling, "architecture").map((a, i) => `${a}/${strings(scaling, "size")[i]}`),
      ["relu/64", "relu/128", "topk/64", "topk/128", "gated/64", "gated/128"],
    );
    assertEquals(strings(scaling, "primary"), names);
    const fits = await readParquet(`${dir}/results/test/scaling_fits.parquet`);
    const keys = strings(fits, "architecture").map((a, i) =>
      `${a}/${strings(fits, "statistic")[i]}`
    );
    for (const a of ["relu", "topk", "gated"]) {
      for (const st of ["dead_or_ultra_low_fraction", "fve"]) {
        assert(keys.includes(`${a}/${st}`), `${a}/${st} in ${keys}`);
      }
    }

    const html = await Deno.readTextFile(`${dir}/results/test/report/index.html`);
    assert(html.includes(`<select id="arch">`), "an Architecture menu");
    assert(html.includes(`<optgroup label="topk">`), "SAEs grouped by architecture");
    for (const n of names) await Deno.stat(`${dir}/results/test/report/data/${n}.js`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
