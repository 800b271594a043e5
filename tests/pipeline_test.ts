/**
 * The reading stages end to end on the `test` preset, in one temporary run: features, steering,
 * scaling and plots, and autointerpretability against a local OpenAI-compatible server.
 */
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { readParquet } from "../mod/io/mod.ts";
import { runTask, taskCommand } from "./helpers.ts";
import { fakeModel, startFakeOpenAI } from "./fake_openai_server.ts";

const ARGS = ["--preset", "test", "--set", "dataDir=data", "--set", "resultsDir=results"];
const SECRET = "sk-test-SECRET123";

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...(await allFiles(p)));
    else out.push(p);
  }
  return out;
}

Deno.test("features, steering, scaling and autointerp on the test preset", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "rtd-pipeline-" });
  const sae = `${dir}/results/test/sae`;
  try {
    await t.step("steer builds everything up to the features stage", async () => {
      const out = await runTask("steer", ARGS, undefined, dir);
      assertEquals(out.code, 0, out.stderr);
    });

    await t.step("density histograms count every feature once", async () => {
      for (const n of [64, 128]) {
        const h = await readParquet(`${sae}/f${n}/density_histogram.parquet`);
        const counts = Array.from(h.getChild("count")!.toArray() as Float64Array, Number);
        assertEquals(counts.reduce((a, b) => a + b, 0), n);
        const stats = await readParquet(`${sae}/f${n}/feature_stats.parquet`);
        const dead = (stats.getChild("count")!.toArray() as Float64Array).filter((c) =>
          c === 0
        ).length;
        assertEquals(counts[0], dead, "the first row counts dead features");
      }
    });

    await t.step("examples, logit tables and loss recovered are written per SAE", async () => {
      const ex = await readParquet(`${sae}/f64/examples.parquet`);
      const kinds = new Set(ex.getChild("kind")!.toArray() as string[]);
      assert(kinds.has("top") && kinds.has("random"), [...kinds].join());
      const text = ex.getChild("context_text")!.get(0)!.toArray() as string[];
      const ids = ex.getChild("context_tokens")!.get(0)!.toArray() as Int32Array;
      assertEquals(text.length, ids.length);
      const logits = await readParquet(`${sae}/f64/logits.parquet`);
      const features = new Set(logits.getChild("feature")!.toArray() as Int32Array);
      assertEquals(
        logits.numRows,
        features.size * 20,
        "10 positive and 10 negative tokens per feature",
      );
      const lr = await readParquet(`${sae}/f64/loss_recovered.parquet`);
      assertEquals(lr.schema.fields.map((f) => f.name), [
        "clean_loss",
        "sae_loss",
        "zero_ablation_loss",
        "loss_recovered",
        "tokens",
      ]);
    });

    await t.step("steering with scale 0 reproduces the unsteered output", async () => {
      const s = await readParquet(`${sae}/f64/steering.parquet`);
      const rows = s.toArray();
      const zero = rows.filter((r) => Number(r.scale) === 0);
      assert(zero.length > 0);
      for (const r of zero) assertEquals(r.steered, r.unsteered);
    });

    await t.step("scaling writes the fit and every plot", async () => {
      const out = await runTask("scaling", [...ARGS, "--no-png"], undefined, dir);
      assertEquals(out.code, 0, out.stderr);
      // The test preset has two sizes: each fit is drawn but has no interval (df 0).
      assertMatch(out.stderr, /scaling: relu independent, l0: inconclusive for L0: slope /);
      assertMatch(
        out.stderr,
        /scaling: relu independent, dead_or_ultra_low_fraction: inconclusive /,
      );
      assertMatch(out.stderr, /scaling: relu independent f64 \(\d+ SAEs?\): L0 /);
      const sc = await readParquet(`${dir}/results/test/scaling.parquet`);
      assertEquals(Array.from(sc.getChild("size")!.toArray() as Int32Array, Number), [64, 128]);
      assertEquals(sc.getChild("init")!.get(0), "independent");
      assert(Number.isFinite(Number(sc.getChild("l0_mean")!.get(0))));
      assert(sc.getChild("dead_or_ultra_low_label")!.get(0).includes("resolution 1/N"));
      const fits = await readParquet(`${dir}/results/test/scaling_fits.parquet`);
      assertEquals(fits.getChild("statistic")!.toArray().slice(0, 2), [
        "l0",
        "dead_or_ultra_low_fraction",
      ]);
      assert(Number.isFinite(Number(fits.getChild("slope")!.get(0))));
      assertEquals(fits.getChild("ci_low")!.get(0), null, "no interval with two sizes");
      for (
        const p of [
          "density_overlay",
          "density_f64",
          "density_f128",
          "log_density_f128",
          "scaling",
          "transformer_loss",
          "sae_metrics",
        ]
      ) {
        const svg = await Deno.readTextFile(`${dir}/results/test/plots/${p}.svg`);
        assert(svg.startsWith("<svg"), p);
        if (p === "scaling") assert(svg.includes("L0, active features per token"), "the L0 panel");
      }
    });

    await t.step("autointerp skips without a key, with one line", async () => {
      const out = await runTask("autointerp", ARGS, [
        "--allow-read",
        "--allow-write",
        "--allow-env=OPENAI_API_KEY,OPENAI_BASE_URL",
      ], dir);
      assertEquals(out.code, 0, out.stderr);
      assertMatch(out.stderr, /autointerp: skipped: set OPENAI_API_KEY/);
    });

    await t.step(
      "autointerp scores features through a local server, caches, and never writes the key",
      async () => {
        const server = startFakeOpenAI(fakeModel((tok) => (/e/.test(tok) ? 8 : 0)));
        try {
          const flags = [
            "--allow-read",
            "--allow-write",
            "--allow-net=127.0.0.1",
            "--allow-env=OPENAI_API_KEY,OPENAI_BASE_URL",
          ];
          const env = { OPENAI_API_KEY: SECRET, OPENAI_BASE_URL: server.baseURL };
          const cmd = (extra: string[]) =>
            taskCommand("autointerp", [...ARGS, ...extra], { flags, cwd: dir, env }).output();
          const first = await cmd([]);
          const err = new TextDecoder().decode(first.stderr);
          assertEquals(first.code, 0, err);
          assert(!err.includes(SECRET), "the key is not logged");
          const sent = server.requests.length;
          assert(sent > 0);
          const ex = await readParquet(`${sae}/f64/explanations.parquet`);
          assertEquals(ex.numRows, 3);
          const explanation = ex.getChild("explanation")!.get(0) as string;
          assertMatch(explanation, /cat/);
          assert(ex.getChild("simulation_score")!.toArray().some((v: unknown) => v !== null));
          // A forced rerun is answered from the cache: no request reaches the server.
          const again = await cmd(["--force"]);
          assertEquals(again.code, 0, new TextDecoder().decode(again.stderr));
          assertEquals(server.requests.length, sent);
          for (const f of await allFiles(dir)) {
            const bytes = await Deno.readFile(f);
            assert(!new TextDecoder().decode(bytes).includes(SECRET), `the key is in ${f}`);
          }
        } finally {
          await server.close();
        }
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
