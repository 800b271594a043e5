/**
 * `deno task bench:tune`: the small lr / λ sweep that chooses a preset's SAE hyperparameters, on
 * a run's cached activations (data/<run>/activations/, cache mode). Every (size, lr, λ) SAE trains
 * side by side from one pass, with the run's recipe (sae.inits[0] initialisation, warm-up,
 * resample steps, dead window, batch size), then is evaluated on the held-out shard.
 *
 *   deno task bench:tune --run demo [--architecture relu] [--sizes 1024,4096,16384]
 *     [--lrs 3e-4,1e-3] [--l1 0.5,1,2] [--target-l0 32] [--init independent] [--seed 0]
 *
 * `--architecture` (relu, gated or jumprelu; default relu) says which sparsity coefficient λ
 * sweeps: sae.l1Coefficient, sae.gatedL1Coefficient or sae.l0Coefficient (mod/sae/stage.ts
 * sparsityOf), each SAE built as the sae stage builds it (trainConfigs). `--l1` is the grid of
 * that coefficient (default 0.5,1,2 for relu, else 0.5, 1 and 2 times the preset's value). topk
 * and batchtopk need no calibration: their L0 is sae.k. This is how a preset matches L0 across
 * architectures: run it per architecture with `--target-l0` = sae.k and set each coefficient to
 * the one it names.
 *
 * The config is the preset of the same name as the run (`--preset` to choose another). Writes
 * results/<run>/tune.parquet (one row per SAE: architecture, coefficient key, size, lr, l1 (the
 * coefficient), held-out fve, L0, dead fraction, features resampled, final training fve) and
 * prints the table, with, per size and lr, the λ whose L0 is nearest the target (`--target-l0`,
 * default: the median L0 of the grid) so that lrs are compared at matched L0.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import * as arrow from "apache-arrow";
import { join } from "node:path";
import { initBackend } from "../../mod/backend/mod.ts";
import {
  loadConfig,
  runPaths,
  SAE_ARCHITECTURE_CHOICES,
  type SaeArchitectureChoice,
} from "../../mod/run/mod.ts";
import { sparsityOf, trainConfigs } from "../../mod/sae/stage.ts";
import { writeParquet } from "../../mod/io/mod.ts";
import {
  ActivationStream,
  listTrainShards,
  readActivationShard,
} from "../../mod/activations/mod.ts";
import {
  evaluateSae,
  nativeSaeStep,
  type SaeStepMetrics,
  type SaeTrainConfig,
  SweepTrainer,
} from "../../mod/sae/mod.ts";
import { arg } from "./args.ts";

const list = (name: string, fallback: string) => arg(name, fallback).split(",").map(Number);

const runName = arg("run", "demo");
const cfg = await loadConfig({ preset: arg("preset", runName), run: runName });
const s = cfg.sae;
const sizes = list("sizes", "1024,4096,16384");
const lrs = list("lrs", "3e-4,1e-3");
const architecture = arg("architecture", "relu") as SaeArchitectureChoice;
if (!SAE_ARCHITECTURE_CHOICES.includes(architecture)) {
  throw new Error(
    `--architecture "${architecture}" must be one of ${SAE_ARCHITECTURE_CHOICES.join(", ")}`,
  );
}
const coefficient = sparsityOf(s, architecture);
if (coefficient.key === "sae.k") {
  throw new Error(`--architecture ${architecture} needs no calibration: its L0 is sae.k`);
}
const l1s = list(
  "l1",
  architecture === "relu" ? "0.5,1,2" : [0.5, 1, 2].map((m) => m * coefficient.value).join(","),
);
const init = arg("init", s.inits[0]) as SaeTrainConfig["init"];
const seed = Number(arg("seed", "0"));

const backend = await initBackend(cfg.backend);
const paths = runPaths(cfg);
const shards = await listTrainShards(paths.activationsDir);
const held = await readActivationShard(paths.activations.heldout);
const configs: SaeTrainConfig[] = [];
for (const size of sizes) {
  for (const lr of lrs) {
    for (const l1 of l1s) {
      // The sae stage's config for this architecture, with this lr and coefficient.
      const c = structuredClone(cfg);
      c.sae.lr = lr;
      (c.sae as Record<string, unknown>)[coefficient.key.slice("sae.".length)] = l1;
      const name = `f${size}-${architecture}-lr${lr}-l1${l1}`;
      const slot = {
        ...{ size, init: init ?? "independent", replicate: 0, architecture, name },
        ...{ primary: false, browsed: false },
      };
      configs.push({ ...trainConfigs(c, [slot])[0], seed: seed * 1000 + configs.length });
    }
  }
}
const native = nativeSaeStep({ threads: backend.threads });
if (!native.step) console.error(`tune: native step unavailable (${native.reason}): slower`);
const trainer = new SweepTrainer(configs, {
  dIn: held.dIn,
  microBatch: s.microBatch,
  logEvery: s.logEvery,
  resampleInputs: s.resampleInputs,
  seed: cfg.seed,
  nativeStep: native.step ?? undefined,
});
const stream = new ActivationStream(shards, { dIn: held.dIn, batchSize: s.batchSize });
const steps = await stream.batches();
console.error(
  `tune: ${configs.length} ${architecture} SAEs (${coefficient.key} in [${l1s}]; ${init} init) on ${steps} steps of ${s.batchSize} rows of ` +
    `run "${runName}" (${shards.length} shards), held-out ${held.seq.length} tokens`,
);
const last = new Map<string, SaeStepMetrics>();
const resampled = new Map<string, number>();
const t0 = performance.now();
for (let step = 0; step < steps; step++) {
  const batch = await stream.next();
  if (!batch) break;
  const x = tf.tensor2d(batch, [s.batchSize, held.dIn]);
  const logs = await trainer.step(x);
  x.dispose();
  for (const m of logs ?? []) {
    last.set(m.name, m);
    resampled.set(
      m.name,
      (resampled.get(m.name) ?? 0) + m.resamples.reduce((a, e) => a + e.nDead, 0),
    );
  }
  if ((step + 1) % 50 === 0) {
    console.error(
      `tune: step ${step + 1}/${steps}, ${((performance.now() - t0) / 1000).toFixed(0)} s`,
    );
  }
}
const rows = trainer.slots.map((slot, i) => {
  const { eval: ev, stats } = evaluateSae(slot.sae, held.acts, s.microBatch, {
    nativeStep: native.step ?? undefined,
  });
  const dead = stats.count.filter((c) => c === 0).length / slot.cfg.dSae;
  return {
    architecture,
    coefficient_key: coefficient.key,
    size: configs[i].dSae,
    lr: configs[i].lr,
    l1: l1s[i % l1s.length],
    init,
    fve: ev.fve,
    l0: ev.l0,
    dead_fraction: dead,
    resampled_features: resampled.get(slot.name) ?? 0,
    train_fve_last: last.get(slot.name)?.fve ?? NaN,
    train_tokens: trainer.tokens,
    heldout_tokens: held.seq.length,
  };
});
trainer.dispose();
native.step?.dispose();
const out = join(paths.results, "tune.parquet");
await writeParquet(out, arrow.tableFromJSON(rows));

const l0s = rows.map((r) => r.l0).sort((a, b) => a - b);
const target = Number(arg("target-l0", String(l0s[Math.floor(l0s.length / 2)])));
console.log(
  `size    lr      λ     fve     L0     dead   resampled   (target L0 ${target.toFixed(1)})`,
);
for (const r of rows) {
  const group = rows.filter((q) => q.size === r.size && q.lr === r.lr);
  const best = group.reduce((a, b) => (Math.abs(b.l0 - target) < Math.abs(a.l0 - target) ? b : a));
  console.log(
    `${String(r.size).padStart(5)}  ${r.lr.toExponential(0).padStart(5)}  ${
      String(r.l1).padStart(4)
    }  ` +
      `${r.fve.toFixed(3)}  ${r.l0.toFixed(1).padStart(5)}  ${
        (100 * r.dead_fraction).toFixed(1).padStart(5)
      }%  ` +
      `${String(r.resampled_features).padStart(9)}${best === r ? "   <- nearest target L0" : ""}`,
  );
}
console.log(`λ is ${coefficient.key}: set the nearest with --set ${coefficient.key}=<λ>`);
console.log(`wrote ${out} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
