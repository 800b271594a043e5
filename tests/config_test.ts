import { assert, assertEquals, assertRejects } from "./assert.ts";
import { loadConfig, validateConfig } from "../mod/run/mod.ts";
import { PAPER_SHARES, PRESETS } from "../mod/run/mod.ts";

Deno.test("every preset validates and names its own run", async () => {
  for (const name of Object.keys(PRESETS)) {
    const cfg = await loadConfig({ preset: name });
    assertEquals(cfg.run, name);
    assertEquals(cfg.preset, name);
  }
});

Deno.test("the paper preset holds the seed's scale and the appendix's mix", async () => {
  const cfg = await loadConfig({ preset: "paper" });
  assertEquals(cfg.model, { dModel: 128, nHeads: 8, dMlp: 512 });
  assertEquals(cfg.tokenize.contextLength, 1024);
  assertEquals(cfg.train.batchSize, 64);
  assertEquals(cfg.train.steps, 28000);
  const shares = Object.fromEntries(cfg.mix.sources.map((s) => [s.name, s.weight]));
  assertEquals(shares, PAPER_SHARES);
  // The appendix's shares are percentages of the rows, each rounded to 0.01 (they sum to 99.99).
  const total = Object.values(PAPER_SHARES).reduce((a, b) => a + b, 0);
  assert(Math.abs(total - 100) <= 8 * 0.005, `the shares sum to ${total}`);
});

Deno.test("--set overrides numbers, strings and lists, and --run renames the run", async () => {
  const cfg = await loadConfig({
    preset: "test",
    set: ["train.steps=7", "tokenize.encoder=js-tiktoken", "seed=3"],
    run: "mine",
  });
  assertEquals(cfg.train.steps, 7);
  assertEquals(cfg.tokenize.encoder, "js-tiktoken");
  assertEquals(cfg.seed, 3);
  assertEquals(cfg.run, "mine");
});

Deno.test("unknown presets, keys and wrong types are rejected with the key named", async () => {
  await assertRejects(() => loadConfig({ preset: "huge" }), /Unknown preset "huge"/);
  await assertRejects(
    () => loadConfig({ set: ["train.stepz=3"] }),
    /Unknown config key "train.stepz"/,
  );
  await assertRejects(() => loadConfig({ set: ["nope=3"] }), /Unknown config key "nope"/);
  await assertRejects(
    () => loadConfig({ set: ["train.steps=many"] }),
    /Config key "train.steps" must be a number, got string "many"/,
  );
  await assertRejects(
    () => loadConfig({ set: ["train.steps=2.5"] }),
    /Config key "train.steps" must be an integer, got 2.5/,
  );
  await assertRejects(
    () => loadConfig({ set: ["tokenize.encoder=bpe"] }),
    /Config key "tokenize.encoder" must be one of tiktoken, js-tiktoken, got "bpe"/,
  );
  await assertRejects(() => loadConfig({ set: ["train.steps"] }), /--set expects KEY=VALUE/);
  await assertRejects(
    () => loadConfig({ set: ["model.nHeads=3"] }),
    /"model.dModel" \(128\) must be divisible by model.nHeads \(3\)/,
  );
});

Deno.test("a config file merges over the preset and its unknown keys are named", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = `${dir}/good.json`, bad = `${dir}/bad.json`, badSource = `${dir}/src.json`;
    await Deno.writeTextFile(good, JSON.stringify({ train: { steps: 11 }, mix: { rows: 50 } }));
    await Deno.writeTextFile(bad, JSON.stringify({ train: { warmup: 1 } }));
    await Deno.writeTextFile(
      badSource,
      JSON.stringify({ mix: { sources: [{ name: "x", weight: 1, kind: "files", pathz: ["a"] }] } }),
    );
    const cfg = await loadConfig({ preset: "test", configFile: good });
    assertEquals(cfg.train.steps, 11);
    assertEquals(cfg.mix.rows, 50);
    assertEquals(cfg.train.batchSize, PRESETS.test.train.batchSize);
    await assertRejects(
      () => loadConfig({ configFile: bad }),
      /Config file ".*bad.json": Unknown config key "train.warmup"/,
    );
    await assertRejects(
      () => loadConfig({ configFile: badSource }),
      /Unknown config key "mix.sources\[0\].pathz"/,
    );
    await assertRejects(
      () => loadConfig({ configFile: `${dir}/none.json` }),
      /file does not exist/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("validateConfig accepts a saved config and rejects a tampered one", async () => {
  const cfg = await loadConfig({ preset: "test" });
  const copy = JSON.parse(JSON.stringify(cfg));
  assertEquals(validateConfig(copy), copy);
  copy.mix.sources[0].kind = "ftp";
  let message = "";
  try {
    validateConfig(copy);
  } catch (e) {
    message = (e as Error).message;
  }
  assert(message.includes(`"mix.sources[0].kind"`), message);
});

Deno.test("cross-key and empty-list errors name the key before any stage runs", async () => {
  await assertRejects(
    () => loadConfig({ preset: "test", set: ["steer.size=96"] }),
    /Config key "steer.size" \(96\) must be one of sae.sizes \[64,128\]/,
  );
  await assertRejects(
    () => loadConfig({ preset: "test", set: ["autointerp.sizes=[64,256]"] }),
    /Config key "autointerp.sizes" names \[256\], not among sae.sizes \[64,128\]/,
  );
  await assertRejects(
    () => loadConfig({ preset: "test", set: ["sae.sizes=[]"] }),
    /Config key "sae.sizes" must list distinct sizes, at least one, got \[\]/,
  );
  await assertRejects(
    () => loadConfig({ preset: "test", set: ["sae.sizes=[64,64]"] }),
    /Config key "sae.sizes" must list distinct sizes/,
  );
  await assertRejects(
    () => loadConfig({ preset: "test", set: ["steer.scales=[]"] }),
    /Config key "steer.scales" must list at least one scale/,
  );
  await assertRejects(
    () => loadConfig({ preset: "test", set: ['steer.prompts=["The",""]'] }),
    /Config key "steer.prompts" holds an empty prompt/,
  );
  // The SAE trainer takes a positive lr only: 0 fails here, not after the activations are cached.
  await assertRejects(
    () => loadConfig({ preset: "test", set: ["sae.lr=0"] }),
    /Config key "sae.lr" must be above 0, got 0/,
  );
  await assertRejects(
    () => loadConfig({ preset: "test", set: ["sae.resampleSteps=[5,20]"] }),
    /Config key "sae.resampleSteps" starts at step 5, before sae.deadWindow \(10\) steps/,
  );
  for (const run of [".", ".."]) {
    await assertRejects(
      () => loadConfig({ preset: "test", run }),
      /Config key "run" must name a folder/,
    );
  }
});

Deno.test("sae.architectures takes a comma or JSON list of distinct architectures; empty = sae.architecture", async () => {
  const { saeArchitectures } = await import("../mod/run/mod.ts");
  const base = await loadConfig({ preset: "test" });
  assertEquals(base.sae.architectures, []);
  assertEquals(saeArchitectures(base.sae), ["relu"]);
  const single = await loadConfig({ preset: "test", set: ["sae.architecture=topk"] });
  assertEquals(saeArchitectures(single.sae), ["topk"]);
  const comma = await loadConfig({ preset: "test", set: ["sae.architectures=relu, topk,gated"] });
  assertEquals(comma.sae.architectures, ["relu", "topk", "gated"]);
  const json = await loadConfig({ preset: "test", set: ['sae.architectures=["jumprelu"]'] });
  // The list wins over sae.architecture, its first being primary.
  assertEquals(saeArchitectures({ ...json.sae, architecture: "relu" }), ["jumprelu"]);
  assertEquals(
    (await loadConfig({ preset: "test", set: ["sae.architectures="] })).sae.architectures,
    [],
  );
  await assertRejects(
    () => loadConfig({ preset: "test", set: ["sae.architectures=relu,sparse"] }),
    /Config key "sae\.architectures\[1\]" must be one of relu, topk, batchtopk, jumprelu, gated, got "sparse"/,
  );
  await assertRejects(
    () => loadConfig({ preset: "test", set: ["sae.architectures=topk,topk"] }),
    /Config key "sae\.architectures" must list distinct architectures, got \["topk","topk"\]/,
  );
  await assertRejects(
    () => loadConfig({ preset: "test", set: ["sae.architectures=[1]"] }),
    /Config key "sae\.architectures\[0\]" must be a string/,
  );
});
