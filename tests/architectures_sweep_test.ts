/**
 * Tests for the architecture dimension of the sweep, end to end on the test preset: one activation
 * pass trains relu, topk and gated SAEs (sae.architectures), then the features, scaling and report
 * stages group by architecture: folder names, the summary's architecture and sparsity columns,
 * features_summary by name, scaling.parquet and scaling_fits.parquet per architecture, and the
 * report's Architecture menu with a data file per browsed SAE, switched in headless Chromium
 * (skipped, with the reason printed, where /usr/bin/chromium is absent).
 *
 *   deno test -A tests/architectures_sweep_test.ts
 *
 * @module
 */
import { assert, assertEquals } from "./assert.ts";
import { readParquet } from "../mod/io/mod.ts";
import { runTask, TEST_PRESET_ARGS } from "./helpers.ts";
import { DEFAULT_CHROMIUM, launchChromium } from "../mod/plot/mod.ts";

const hasChromium = await Deno.stat(DEFAULT_CHROMIUM).then(() => true, () => false);
if (!hasChromium) {
  console.log(`architectures_sweep_test: menu check skipped: no Chromium at ${DEFAULT_CHROMIUM}`);
}

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

Deno.test("relu, topk and gated from one pass: folders, summary, scaling fits and report per architecture", async (t) => {
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

    await t.step({
      name: "the Architecture menu switches SAEs at the same size in Chromium",
      ignore: !hasChromium,
      fn: () => menuChecks(`${dir}/results/test/report/index.html`),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Opens the page, switches architecture and size with the menus, and checks what is shown. */
async function menuChecks(index: string): Promise<void> {
  const browser = await launchChromium({ chromiumPath: DEFAULT_CHROMIUM });
  const problems: string[] = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
    await page.goto(`file://${index}`);
    await page.waitForSelector("body[data-sae='f64']");
    assertEquals(await page.inputValue("#arch"), "relu");
    // After a switch: the page shows `sae`, and the Architecture menu, the SAE menu, the hash
    // and the feature count all agree with it.
    const expectShown = async (sae: string, arch: string, count: number) => {
      await page.waitForSelector(`body[data-sae='${sae}']`);
      assertEquals({
        arch: await page.inputValue("#arch"),
        menu: await page.inputValue("#sae"),
        hash: await page.evaluate(() => location.hash),
        count: Number(await page.getAttribute("#fcount", "data-count")),
      }, { arch, menu: sae, hash: `#${sae}`, count });
    };
    // Same size, other architecture.
    await page.selectOption("#arch", "gated");
    await expectShown("f64-gated-independent-r0", "gated", 64);
    // Another size of that architecture from the SAE menu, then back to relu at that size.
    await page.selectOption("#sae", "f128-gated-independent-r0");
    await expectShown("f128-gated-independent-r0", "gated", 128);
    await page.selectOption("#arch", "topk");
    await expectShown("f128-topk-independent-r0", "topk", 128);
    await page.selectOption("#arch", "relu");
    await expectShown("f128", "relu", 128);
    // A deep link to another architecture's feature sets both menus.
    await page.goto(`file://${index}#f64-topk-independent-r0/3`);
    await page.waitForSelector("body[data-sae='f64-topk-independent-r0']");
    await page.waitForSelector("#detail[data-feature='3']");
    assertEquals(await page.inputValue("#arch"), "topk");
    assertEquals(await page.inputValue("#sae"), "f64-topk-independent-r0");
    assertEquals(problems, []);
  } finally {
    await browser.close();
  }
}
