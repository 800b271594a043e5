/**
 * Tests for tasks/sae.ts: the activation cache, then the SAE sweep of the test preset with 2 inits
 * × 2 seeds × 2 sizes (8 SAEs from one stream): folder names, files, cfg.json provenance, the
 * one-row-per-SAE summary, and a SIGKILLed run resumed to the same weights; plus the config checks
 * of sae.inits and the resample schedule against the run's length.
 *
 *   deno test -A tests/sae_task_test.ts
 *
 * @module
 */
import {
  assert,
  assertAllClose,
  assertAlmostEquals,
  assertEquals,
  assertGreater,
  assertThrows,
} from "./assert.ts";
import { readParquet } from "../mod/io/mod.ts";
import { readSafetensors } from "../mod/io/mod.ts";
import { readActivationShard } from "../mod/activations/mod.ts";
import { loadConfig } from "../mod/run/mod.ts";
import { browsedSlots, saeDirName, saeSlots } from "../mod/run/mod.ts";
import { checkResampleSchedule } from "../tasks/sae.ts";
import { copyTree, killWhen, runTask, taskCommand, TEST_PRESET_ARGS } from "./helpers.ts";

const ARGS = [
  ...TEST_PRESET_ARGS,
  "--set",
  "sae.seeds=2",
  "--set",
  'sae.inits=["independent","parallel"]',
];
const SAE_FILES = [
  "cfg.json",
  "feature_stats.parquet",
  "metrics.parquet",
  "resamples.parquet",
  "sae.safetensors",
];
/** The contract other stages rely on: primary f<N>, the rest f<N>-<init>-r<r>. */
const FOLDERS = [
  ["f64", 64, "independent", 0],
  ["f128", 128, "independent", 0],
  ["f64-independent-r1", 64, "independent", 1],
  ["f128-independent-r1", 128, "independent", 1],
  ["f64-parallel-r0", 64, "parallel", 0],
  ["f128-parallel-r0", 128, "parallel", 0],
  ["f64-parallel-r1", 64, "parallel", 1],
  ["f128-parallel-r1", 128, "parallel", 1],
] as const;
const SUMMARY_COLUMNS = [
  "name",
  "size",
  "init",
  "replicate",
  "seed",
  "architecture",
  "sparsity_key",
  "sparsity_value",
  "heldout_tokens",
  "density_resolution",
  "fve",
  "mse",
  "l0",
  "l1",
  "dead_fraction",
  "alive",
  "resample_events",
  "train_tokens",
  "tokens_per_s",
  "mse_change_last_fifth",
  "l0_change_last_fifth",
  "flat",
];

Deno.test("sae saeSlots() and saeDirName() name the primary f<N> and the rest f<N>-<init>-r<r>", () => {
  const slots = saeSlots({ sizes: [64, 128], inits: ["independent", "parallel"], seeds: 2 });
  assertEquals(
    slots.map((s) => [s.name, s.size, s.init, s.replicate]),
    FOLDERS.map((f) => [...f]),
  );
  assertEquals(slots.filter((s) => s.primary).map((s) => s.name), ["f64", "f128"]);
  assertEquals(saeDirName(4096), "f4096");
  assertEquals(saeDirName(4096, { init: "parallel", replicate: 0 }), "f4096-parallel-r0");
});

Deno.test("with several architectures every SAE but the primary f<N> names its architecture", () => {
  const sweep = { sizes: [64, 128], inits: ["independent", "parallel"], seeds: 1 };
  const slots = saeSlots({ ...sweep, architecture: "relu", architectures: ["topk", "gated"] });
  assertEquals(slots.map((s) => s.name), [
    "f64",
    "f128",
    "f64-topk-parallel-r0",
    "f128-topk-parallel-r0",
    "f64-gated-independent-r0",
    "f128-gated-independent-r0",
    "f64-gated-parallel-r0",
    "f128-gated-parallel-r0",
  ]);
  assertEquals(slots.filter((s) => s.primary).map((s) => s.architecture), ["topk", "topk"]);
  assertEquals(browsedSlots({ ...sweep, architectures: ["topk", "gated"] }).map((s) => s.name), [
    "f64",
    "f128",
    "f64-gated-independent-r0",
    "f128-gated-independent-r0",
  ]);
  // One architecture, however given: the names of before sae.architectures.
  const one = saeSlots({ ...sweep, architecture: "gated" }).map((s) => s.name);
  assertEquals(one, saeSlots({ ...sweep, architectures: ["gated"] }).map((s) => s.name));
  assertEquals(one.slice(2), ["f64-parallel-r0", "f128-parallel-r0"]);
  assertEquals(
    saeDirName(64, { init: "independent", replicate: 0, architecture: "topk" }),
    "f64-independent-r0",
  );
  assertEquals(
    saeDirName(64, {
      init: "independent",
      replicate: 1,
      architecture: "topk",
      namedArchitecture: true,
    }),
    "f64-topk-independent-r1",
  );
});

Deno.test("sae config: sae.inits takes known, distinct inits; the resample schedule fits the run", async () => {
  const cfg = await loadConfig({ preset: "demo" });
  assertEquals([cfg.sae.inits, cfg.sae.seeds, cfg.sae.warmupSteps], [
    ["independent", "parallel"],
    2,
    16,
  ]);
  assertEquals((await loadConfig({ preset: "paper" })).sae.inits, ["independent"]);
  const bad = async (set: string, re: RegExp) => {
    let err: Error | null = null;
    await loadConfig({ preset: "test", set: [set] }).catch((e) => (err = e));
    assert(err !== null && re.test((err as Error).message), `${set}: ${err}`);
  };
  await bad('sae.inits=["kaiming"]', /"sae\.inits\[0\]" must be one of independent, parallel/);
  await bad("sae.inits=[]", /"sae\.inits" must list distinct inits, at least one/);
  await bad('sae.inits=["parallel","parallel"]', /"sae\.inits" must list distinct inits/);
  await bad("sae.seeds=0", /"sae\.seeds" must be at least 1/);
  await bad("sae.warmupSteps=-1", /"sae\.warmupSteps" must be at least 0/);
  await bad("sae.resampleSteps=[30,20]", /"sae\.resampleSteps" must be increasing/);
  // Known only at the stage's start: the run's steps. The demo's 384 steps: 5.3 windows, quiet.
  assertEquals(checkResampleSchedule({ resampleSteps: [64, 128], deadWindow: 48 }, 384), null);
  assertEquals(checkResampleSchedule({ resampleSteps: [], deadWindow: 48 }, 384), null);
  assert(
    /only 1\.2 dead windows .* last resample at step 20 of 32/.test(
      checkResampleSchedule({ resampleSteps: [20], deadWindow: 10 }, 32)!,
    ),
  );
  assertThrows(
    () => checkResampleSchedule({ resampleSteps: [20, 32], deadWindow: 10 }, 32),
    /Config key "sae\.resampleSteps" \[20,32\] has step 32, at or past the run's 32 steps/,
  );
});

async function checkpointStep(dir: string): Promise<number> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dir}/sweep_state.json`)).step;
  } catch {
    return 0;
  }
}

Deno.test("activations, then an SAE sweep of 2 inits x 2 seeds: 8 folders and summary rows, and resume", async () => {
  const a = await Deno.makeTempDir({ prefix: "rtd-sae-" });
  const b = await Deno.makeTempDir({ prefix: "rtd-sae-" });
  try {
    const up = await runTask("activations", ARGS, undefined, a);
    assertEquals(up.code, 0, up.stderr);
    // The activation cache: shuffled training shards and an in-order held-out shard.
    const shard = await readActivationShard(`${a}/data/test/activations/train-00000.parquet`);
    assertEquals(shard.dIn, 128);
    assertEquals(shard.seq.length, 4096);
    assert(
      shard.seq.some((s, i) => i > 0 && s !== shard.seq[i - 1] && s === shard.seq[0]),
      "shuffled",
    );
    const held = await readActivationShard(`${a}/data/test/activations/heldout.parquet`);
    assertEquals(Array.from(held.pos.subarray(0, 3)), [0, 1, 2]);
    assert(held.acts.every((v) => v >= 0), "post-ReLU activations are non-negative");
    await Deno.remove(b);
    await copyTree(a, b);

    const unbroken = await runTask("sae", ARGS, undefined, a);
    assertEquals(unbroken.code, 0, unbroken.stderr);
    // The test preset's last resample (step 20 of 32) leaves 1.2 windows of 10: a warning.
    assert(/sae: warning: only 1\.2 dead windows/.test(unbroken.stderr), unbroken.stderr);
    assert(/sae: 8 SAEs \(64, 128 features/.test(unbroken.stderr), unbroken.stderr);
    // At the test preset's λ 0.1 some of the 8 SAEs have dead features to resample at step 20.
    assert(
      /f\d+\S* +resampled \d+ dead features at step 20/.test(unbroken.stderr),
      unbroken.stderr,
    );
    assert(
      /f\d+\S* +10 steps after the resample at step 20: \d+ of the \d+ resampled features fired/
        .test(unbroken.stderr),
      unbroken.stderr,
    );
    // Where the loop's time went, once, after the last step.
    const loop = unbroken.stderr.match(
      /sae: training loop, (\d+) steps in ([\d.]+) s: activations ([\d.]+) s \(\d+%, [\d.]+ s\/step\), SAE steps ([\d.]+) s .*checkpoints ([\d.]+) s/,
    );
    assert(loop, unbroken.stderr);
    const [steps, total, ...parts] = loop.slice(1).map(Number);
    assert(steps > 20, `steps ${steps}`);
    assertAlmostEquals(parts.reduce((a, b) => a + b), total, 0.15);

    const folders = [];
    for await (const e of Deno.readDir(`${a}/results/test/sae`)) {
      if (e.isDirectory) folders.push(e.name);
    }
    assertEquals(folders.sort(), FOLDERS.map((f) => f[0]).sort());
    const seeds = new Set<number>();
    for (const [name, n, init, replicate] of FOLDERS) {
      const dir = `${a}/results/test/sae/${name}`;
      const files = [];
      for await (const e of Deno.readDir(dir)) files.push(e.name);
      assertEquals(files.sort(), SAE_FILES, `${name} holds exactly the SAE files`);
      const cfg = JSON.parse(await Deno.readTextFile(`${dir}/cfg.json`));
      assertEquals([cfg.d_in, cfg.d_sae, cfg.architecture, cfg.hook_name], [
        128,
        n,
        "standard",
        "blocks.0.mlp.hook_post",
      ]);
      assertEquals([cfg.init, cfg.replicate, cfg.run_seed], [init, replicate, 0]);
      assert(Number.isInteger(cfg.seed), `${name} records its seed`);
      seeds.add(cfg.seed);
      const w = await readSafetensors(`${dir}/sae.safetensors`);
      assertEquals(w.tensors.W_enc.shape, [128, n]);
      assertEquals(w.tensors.W_dec.shape, [n, 128]);
      const stats = await readParquet(`${dir}/feature_stats.parquet`);
      assertEquals(stats.numRows, n);
      const density = stats.getChild("density")!.toArray() as Float64Array;
      const count = stats.getChild("count")!.toArray() as Float64Array;
      density.forEach((d, f) => assertEquals(d, count[f] / 2048));
      const metrics = await readParquet(`${dir}/metrics.parquet`);
      assertEquals(Array.from(metrics.getChild("step")!.toArray() as Int32Array).slice(0, 2), [
        4,
        8,
      ]);
      const events = await readParquet(`${dir}/resamples.parquet`);
      assertEquals(events.numRows, 1);
    }
    assertEquals(seeds.size, 8);
    // Distinct seeds (and inits) give different weights.
    const w0 = await readSafetensors(`${a}/results/test/sae/f64/sae.safetensors`);
    const w1 = await readSafetensors(`${a}/results/test/sae/f64-independent-r1/sae.safetensors`);
    const d0 = w0.tensors.W_dec.data as Float32Array, d1 = w1.tensors.W_dec.data as Float32Array;
    assertGreater(d0.reduce((m, v, i) => Math.max(m, Math.abs(v - d1[i])), 0), 0.1);

    const summary = await readParquet(`${a}/results/test/sae/summary.parquet`);
    assertEquals(summary.schema.fields.map((f) => f.name), SUMMARY_COLUMNS);
    assertEquals(summary.numRows, 8);
    const col = (c: string) => Array.from(summary.getChild(c)!, (v) => v as number | string);
    assertEquals(col("name"), FOLDERS.map((f) => f[0]));
    assertEquals(col("size"), FOLDERS.map((f) => f[1]));
    assertEquals(col("init"), FOLDERS.map((f) => f[2]));
    assertEquals(col("replicate"), FOLDERS.map((f) => f[3]));
    assertEquals(new Set(col("seed")).size, 8);
    assertEquals(String(summary.schema.fields[0].type), "Utf8");
    assertEquals(String(summary.schema.fields[1].type), "Int32");
    col("density_resolution").forEach((r, i) =>
      assertEquals(r, 1 / (col("heldout_tokens")[i] as number))
    );

    const ckpt = `${b}/results/test/sae/checkpoint`;
    const killed = await killWhen(
      taskCommand("sae", ARGS, { cwd: b }),
      async () => (await checkpointStep(ckpt)) >= 8,
    );
    assert(killed, "the run was killed before it finished");
    const resumed = await runTask("sae", ARGS, undefined, b);
    assertEquals(resumed.code, 0, resumed.stderr);
    assert(/resuming from the checkpoint at step (8|16|24)/.test(resumed.stderr), resumed.stderr);
    for (const [name] of FOLDERS) {
      const wa = await readSafetensors(`${a}/results/test/sae/${name}/sae.safetensors`);
      const wb = await readSafetensors(`${b}/results/test/sae/${name}/sae.safetensors`);
      assertAllClose(
        wb.tensors.W_dec.data as Float32Array,
        wa.tensors.W_dec.data as Float32Array,
        1e-5,
      );
      const ma = await readParquet(`${a}/results/test/sae/${name}/metrics.parquet`);
      const mb = await readParquet(`${b}/results/test/sae/${name}/metrics.parquet`);
      assertAllClose(
        mb.getChild("mse")!.toArray() as Float64Array,
        ma.getChild("mse")!.toArray() as Float64Array,
        1e-5,
      );
    }
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true }).catch(() => {});
  }
});
