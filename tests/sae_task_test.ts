import { assert, assertAllClose, assertEquals } from "./assert.ts";
import { readParquet } from "../mod/parquet.ts";
import { readSafetensors } from "../mod/safetensors.ts";
import { readActivationShard } from "../mod/activations.ts";
import { copyTree, killWhen, runTask, taskCommand } from "./helpers.ts";

const ARGS = ["--preset", "test", "--set", "dataDir=data", "--set", "resultsDir=results"];

async function checkpointStep(dir: string): Promise<number> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dir}/sweep_state.json`)).step;
  } catch {
    return 0;
  }
}

Deno.test("activations, then the SAE sweep: files, layout, and resume after a kill", async () => {
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
    assert(/f64 +resampled \d+ dead features at step 20/.test(unbroken.stderr), unbroken.stderr);
    assert(
      /f64 +10 steps after the resample at step 20: \d+ of the \d+ resampled features fired again/
        .test(unbroken.stderr),
      unbroken.stderr,
    );

    for (const n of [64, 128]) {
      const dir = `${a}/results/test/sae/f${n}`;
      const cfg = JSON.parse(await Deno.readTextFile(`${dir}/cfg.json`));
      assertEquals([cfg.d_in, cfg.d_sae, cfg.architecture, cfg.hook_name], [
        128,
        n,
        "standard",
        "blocks.0.mlp.hook_post",
      ]);
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
    const summary = await readParquet(`${a}/results/test/sae/summary.parquet`);
    assertEquals(Array.from(summary.getChild("size")!.toArray()), [64, 128]);

    const ckpt = `${b}/results/test/sae/checkpoint`;
    const killed = await killWhen(
      taskCommand("sae", ARGS, { cwd: b }),
      async () => (await checkpointStep(ckpt)) >= 8,
    );
    assert(killed, "the run was killed before it finished");
    const resumed = await runTask("sae", ARGS, undefined, b);
    assertEquals(resumed.code, 0, resumed.stderr);
    assert(/resuming from the checkpoint at step (8|16|24)/.test(resumed.stderr), resumed.stderr);
    for (const n of [64, 128]) {
      const wa = await readSafetensors(`${a}/results/test/sae/f${n}/sae.safetensors`);
      const wb = await readSafetensors(`${b}/results/test/sae/f${n}/sae.safetensors`);
      assertAllClose(
        wb.tensors.W_dec.data as Float32Array,
        wa.tensors.W_dec.data as Float32Array,
        1e-5,
      );
      const ma = await readParquet(`${a}/results/test/sae/f${n}/metrics.parquet`);
      const mb = await readParquet(`${b}/results/test/sae/f${n}/metrics.parquet`);
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
