import { assert, assertAllClose, assertEquals, assertLess } from "./assert.ts";
import { readParquet } from "../mod/io/mod.ts";
import { readSafetensors } from "../mod/io/mod.ts";
import { PARAM_NAMES } from "../mod/transformer/mod.ts";
import { batchIndices, unigramEntropy } from "../tasks/train.ts";
import { copyTree, killWhen, runTask, taskCommand, TEST_PRESET_ARGS } from "./helpers.ts";

const ARGS = [
  ...TEST_PRESET_ARGS,
  "--set",
  "train.steps=16",
  "--set",
  "train.checkpointEvery=4",
  "--set",
  "train.evalEvery=8",
];

async function checkpointStep(path: string): Promise<number> {
  try {
    return Number((await readSafetensors(path)).metadata.step);
  } catch {
    return 0;
  }
}

Deno.test("training killed mid-run resumes from its checkpoint and matches an unbroken run", async () => {
  const a = await Deno.makeTempDir({ prefix: "rtd-train-" });
  const b = await Deno.makeTempDir({ prefix: "rtd-train-" });
  try {
    // Shared upstream: mix and tokenize once, then copy (relative paths keep manifests valid).
    const tok = await runTask("tokenize", ARGS, undefined, a);
    assertEquals(tok.code, 0, tok.stderr);
    await Deno.remove(b);
    await copyTree(a, b);

    const unbroken = await runTask("train", ARGS, undefined, a);
    assertEquals(unbroken.code, 0, unbroken.stderr);

    const ckpt = `${b}/results/test/transformer/checkpoint.safetensors`;
    const killed = await killWhen(
      taskCommand("train", ARGS, { cwd: b }),
      async () => (await checkpointStep(ckpt)) >= 8,
    );
    assert(killed, "the run was killed before it finished");
    const resumed = await runTask("train", ARGS, undefined, b);
    assertEquals(resumed.code, 0, resumed.stderr);
    assert(/resuming from the checkpoint at step (8|12)/.test(resumed.stderr), resumed.stderr);

    const lossA = await readParquet(`${a}/results/test/transformer/loss.parquet`);
    const lossB = await readParquet(`${b}/results/test/transformer/loss.parquet`);
    const la = Array.from(lossA.getChild("train_loss")!.toArray() as Float64Array);
    const lb = Array.from(lossB.getChild("train_loss")!.toArray() as Float64Array);
    assertEquals(la.length, 16);
    assertAllClose(lb, la, 1e-5, "train losses of the resumed run");
    const va = lossA.getChild("val_loss")!.toArray(), vb = lossB.getChild("val_loss")!.toArray();
    assertAllClose([vb[7], vb[15]], [va[7], va[15]], 1e-5, "validation losses");
    // The loss falls, and the final weights are the same.
    assertLess(la.at(-1)!, la[0]);
    const wa = await readSafetensors(`${a}/results/test/transformer/model.safetensors`);
    const wb = await readSafetensors(`${b}/results/test/transformer/model.safetensors`);
    assertEquals(Object.keys(wa.tensors).sort(), [...PARAM_NAMES].sort());
    assertAllClose(
      wb.tensors["blocks.0.mlp.W_in"].data as Float32Array,
      wa.tensors["blocks.0.mlp.W_in"].data as Float32Array,
      1e-5,
    );
    // The checkpoint is removed once the run is complete.
    await Deno.stat(ckpt).then(() => assert(false, "checkpoint left behind"), () => {});
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true }).catch(() => {});
  }
});

Deno.test("batches are a pure function of seed and step", () => {
  assertEquals(Array.from(batchIndices(0, 5, 4, 100)), Array.from(batchIndices(0, 5, 4, 100)));
  assert(batchIndices(0, 5, 4, 100).some((v, i) => v !== batchIndices(0, 6, 4, 100)[i]));
  assert(batchIndices(3, 0, 64, 10).every((v) => v >= 0 && v < 10));
});

Deno.test("unigram entropy matches a hand computation", () => {
  // p = [1/2, 1/4, 1/4] -> H = 1.5 ln 2
  const h = unigramEntropy(Uint16Array.from([7, 7, 3, 9]));
  assert(Math.abs(h - 1.5 * Math.LN2) < 1e-12, String(h));
});
