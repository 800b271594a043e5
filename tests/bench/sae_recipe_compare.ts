/**
 * `deno task bench:recipe`: checks a run's SAEs against an independent PyTorch reference of
 * Anthropic's Towards Monosemanticity recipe (tests/bench/sae_recipe_ref.py), trained on the same
 * activations with the same hyperparameters.
 *
 *   deno task bench:recipe --run demo [--seeds 0,1,2] [--inits independent,parallel]
 *       [--sizes 512,1024] [--threads 2] [--resample-power 2] [--resample-center]
 *       [--reference-json FILE]
 *       [--data-dir data] [--results-dir results]
 *
 * --resample-power and --resample-center pass through to the reference (draw probability ∝
 * ‖x − x̂‖^power, default 2; decoder row from x − b_dec instead of x).
 *
 * 1. Reads the SAE hyperparameters of the run: the `sae` section of the SAE stage's manifest
 *    (results/<run>/sae/sae.manifest.json, the config the SAEs were trained with), else of
 *    data/<run>/config.json. Missing keys the reference understands (sae.warmupSteps, sae.init)
 *    default to none / "independent".
 * 2. Exports data/<run>/activations/ to raw float32 (tests/bench/export_activations.ts; reused
 *    while the shards are unchanged) and runs the reference with Debian's python3-torch
 *    (/usr/bin/python3) on every (init, size, seed): inits are those of the summary's `init`
 *    column (else sae.inits / sae.init, else "independent"); seeds 0 .. sae.seeds − 1 (else 0).
 * 3. Reads the project's results/<run>/sae/summary.parquet (one row per SAE; `init` and
 *    `replicate` columns are used where present, else every row counts as one replicate of the
 *    config's init) and compares, per init and size, dead fraction, fve and L0 on the held-out
 *    activations.
 *
 * Agreement (per init, size and metric): with n runs per side, means m and sample SDs s (0 for one
 * run), pooled SD = sqrt(((n_p − 1) s_p² + (n_r − 1) s_r²) / (n_p + n_r − 2)) (0 when n_p + n_r ≤
 * 2); the two agree when |m_p − m_r| ≤ max(2 × pooled SD, floor), the floor being 0.02 for fve,
 * max(1, 10% of the mean of the two means) for L0, and max(0.02, 2 × sqrt(p̄ (1 − p̄) / size)) for
 * the dead fraction (p̄ the mean of the two means: the binomial noise of a fraction of `size`
 * features). An SAE (init, size) agrees when all three metrics do.
 *
 * Writes results/<run>/recipe_compare.parquet (one row per init, size and metric) and
 * results/<run>/recipe_ref.parquet (one row per reference SAE), and prints a table.
 *
 * @module
 */
import * as arrow from "apache-arrow";
import { join } from "node:path";
import { readParquet, writeParquet } from "../../mod/io/mod.ts";
import { exportActivations } from "./export_activations.ts";
import { arg } from "./args.ts";

const PYTHON = "/usr/bin/python3";
const METRICS = ["dead_fraction", "fve", "l0"] as const;
type Metric = typeof METRICS[number];

/** One SAE's held-out numbers, from either implementation. */
export interface SaeResult {
  init: string;
  size: number;
  dead_fraction: number;
  fve: number;
  l0: number;
  tokens_per_s?: number;
  train_tokens?: number;
}

/** Mean and sample SD (0 for a single value). */
export function meanSd(xs: number[]): { mean: number; sd: number; n: number } {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd, n };
}

/** The smallest tolerance per metric (see the module doc). */
export function floorFor(metric: Metric, size: number, mp: number, mr: number): number {
  const m = (mp + mr) / 2;
  if (metric === "fve") return 0.02;
  if (metric === "l0") return Math.max(1, 0.1 * m);
  const p = Math.min(1, Math.max(0, m));
  return Math.max(0.02, 2 * Math.sqrt(p * (1 - p) / size));
}

/** The agreement rule of the module doc, for one init, size and metric. */
export function agreement(metric: Metric, size: number, project: number[], reference: number[]) {
  const p = meanSd(project), r = meanSd(reference);
  const dof = p.n + r.n - 2;
  const pooled = dof > 0 ? Math.sqrt(((p.n - 1) * p.sd ** 2 + (r.n - 1) * r.sd ** 2) / dof) : 0;
  const floor = floorFor(metric, size, p.mean, r.mean);
  const tolerance = Math.max(2 * pooled, floor);
  const delta = r.mean - p.mean;
  return { p, r, delta, pooled, floor, tolerance, agree: Math.abs(delta) <= tolerance };
}

/** The run's SAE config: the SAE stage's manifest, else data/<run>/config.json. */
async function saeConfig(
  run: string,
  dataDir: string,
  resultsDir: string,
): Promise<{ sae: Record<string, unknown>; from: string }> {
  const candidates: [string, (j: Record<string, unknown>) => unknown][] = [
    [
      join(resultsDir, run, "sae", "sae.manifest.json"),
      (j) => (j.params as { sae?: unknown })?.sae,
    ],
    [join(dataDir, run, "config.json"), (j) => j.sae],
  ];
  for (const [path, get] of candidates) {
    try {
      const sae = get(JSON.parse(await Deno.readTextFile(path)));
      if (sae && typeof sae === "object") {
        return { sae: sae as Record<string, unknown>, from: path };
      }
    } catch {
      // try the next
    }
  }
  throw new Error(
    `No SAE config for run "${run}": neither ${candidates.map((c) => c[0]).join(" nor ")}`,
  );
}

function numCol(t: arrow.Table, name: string): number[] | null {
  const c = t.getChild(name);
  return c ? Array.from(c.toArray() as ArrayLike<number | bigint>, (v) => Number(v)) : null;
}

function strCol(t: arrow.Table, name: string): (string | null)[] | null {
  const c = t.getChild(name);
  return c ? Array.from({ length: t.numRows }, (_, i) => c.get(i) as string | null) : null;
}

/** The project's SAEs from summary.parquet (ReLU rows only). */
async function projectResults(
  path: string,
  defaultInit: string,
): Promise<{ rows: SaeResult[]; hasInit: boolean; skipped: number }> {
  // Before the SAE stage has finished there is nothing to compare yet: the reference can still
  // run (and be saved with --reference-json) meanwhile.
  try {
    await Deno.stat(path);
  } catch {
    return { rows: [], hasInit: false, skipped: 0 };
  }
  const t = await readParquet(path);
  const size = numCol(t, "size"), fve = numCol(t, "fve"), l0 = numCol(t, "l0");
  const dead = numCol(t, "dead_fraction");
  if (!size || !fve || !l0 || !dead) {
    throw new Error(`"${path}" lacks one of the columns size, fve, l0, dead_fraction`);
  }
  const init = strCol(t, "init"), arch = strCol(t, "architecture");
  const tps = numCol(t, "tokens_per_s"), trained = numCol(t, "train_tokens");
  const rows: SaeResult[] = [];
  let skipped = 0;
  for (let i = 0; i < t.numRows; i++) {
    const a = arch?.[i] ?? "relu";
    if (a !== "relu" && a !== "standard") {
      skipped++;
      continue;
    }
    rows.push({
      init: init?.[i] ?? defaultInit,
      size: size[i],
      dead_fraction: dead[i],
      fve: fve[i],
      l0: l0[i],
      tokens_per_s: tps?.[i],
      train_tokens: trained?.[i],
    });
  }
  return { rows, hasInit: init !== null, skipped };
}

const list = (s: string) => s.split(",").map((v) => v.trim()).filter((v) => v !== "");

function fmtMs(x: { mean: number; sd: number; n: number }, digits: number): string {
  const m = x.mean.toFixed(digits);
  return x.n > 1 ? `${m}±${x.sd.toFixed(digits)}` : m;
}

async function main(): Promise<void> {
  const run = arg("run", "demo");
  const dataDir = arg("data-dir", "data"), resultsDir = arg("results-dir", "results");
  const threads = Number(arg("threads", "2"));
  const { sae, from } = await saeConfig(run, dataDir, resultsDir);
  // sae.architectures (when it lists any) else sae.architecture: the ReLU SAEs among them are
  // compared (projectResults keeps the summary's relu rows), the others left out.
  const archs = Array.isArray(sae.architectures) && sae.architectures.length > 0
    ? (sae.architectures as string[])
    : [String(sae.architecture ?? "relu")];
  if (!archs.includes("relu")) {
    throw new Error(
      `Run "${run}" trained ${archs.join(", ")} SAEs; the reference is the ReLU recipe only`,
    );
  }
  const configInits = Array.isArray(sae.inits)
    ? (sae.inits as string[])
    : typeof sae.init === "string"
    ? [sae.init]
    : ["independent"];
  const configInit = configInits[0];
  const summaryPath = join(resultsDir, run, "sae", "summary.parquet");
  const project = await projectResults(summaryPath, configInit);
  const inits = Deno.args.includes("--inits")
    ? list(arg("inits", "independent"))
    : [...new Set(project.rows.map((r) => r.init))];
  if (inits.length === 0) inits.push(...configInits);
  // As many reference seeds as the project trained replicates, unless --seeds says otherwise.
  const seeds = Deno.args.includes("--seeds")
    ? list(arg("seeds", "0")).map(Number)
    : Array.from({ length: Math.max(1, Number(sae.seeds ?? 1)) }, (_, i) => i);
  const sizes = Deno.args.includes("--sizes")
    ? list(arg("sizes", "")).map(Number)
    : (sae.sizes as number[]);
  const batch = Number(sae.batchSize);
  const warmup = Number(sae.warmupSteps ?? 0);
  console.log(
    `bench:recipe: run ${run}, config from ${from}: sizes [${sizes}], inits [${inits}], seeds ` +
      `[${seeds}], λ ${sae.l1Coefficient}, lr ${sae.lr}, batch ${batch}, warm-up ${warmup}, ` +
      `resample at [${sae.resampleSteps}] (window ${sae.deadWindow}, ${sae.resampleInputs} inputs)`,
  );

  const t0 = performance.now();
  const ex = await exportActivations(run, dataDir);
  console.log(
    `bench:recipe: activations ${ex.reused ? "reused from" : "exported to"} ${ex.train} ` +
      `(${ex.trainRows} train + ${ex.heldoutRows} held-out rows x ${ex.dIn}` +
      `${ex.reused ? "" : `, ${((performance.now() - t0) / 1000).toFixed(1)} s`})`,
  );
  const steps = Math.floor(ex.trainRows / batch);
  const args = [
    new URL("./sae_recipe_ref.py", import.meta.url).pathname,
    ...["--train", ex.train, "--heldout", ex.heldout, "--d-in", String(ex.dIn)],
    ...["--sizes", sizes.join(","), "--seeds", seeds.join(","), "--inits", inits.join(",")],
    ...["--l1", String(sae.l1Coefficient), "--lr", String(sae.lr), "--batch", String(batch)],
    ...["--resample-steps", (sae.resampleSteps as number[]).join(",")],
    ...["--dead-window", String(sae.deadWindow), "--resample-inputs", String(sae.resampleInputs)],
    ...["--warmup", String(warmup), "--threads", String(threads)],
    ...["--resample-power", arg("resample-power", "2")],
    ...(Deno.args.includes("--resample-center") ? ["--resample-center"] : []),
    ...["--log-every", String(Math.max(1, Math.ceil(steps / 4)))],
  ];
  // --reference-json FILE: reuse the reference's JSON lines from FILE when it exists, else run
  // the reference and save them there (so it can run while the project's SAE stage still trains).
  const refJson = Deno.args.includes("--reference-json") ? arg("reference-json", "") : "";
  let refText: string | null = null;
  if (refJson) refText = await Deno.readTextFile(refJson).catch(() => null);
  if (refText !== null) {
    console.log(`bench:recipe: reference results reused from ${refJson}`);
  } else {
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command(PYTHON, { args, stdout: "piped", stderr: "inherit" }).output();
    } catch (e) {
      throw new Error(
        `Cannot run ${PYTHON} (${(e as Error).message.split("\n")[0]}): ` +
          `apt-get install python3-torch libtcmalloc-minimal4`,
      );
    }
    if (out.code !== 0) throw new Error(`The reference (${PYTHON}) exited with ${out.code}`);
    refText = new TextDecoder().decode(out.stdout);
    if (refJson) await Deno.writeTextFile(refJson, refText);
  }
  const ref = refText.trim().split("\n").filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as SaeResult & Record<string, unknown>);
  if (project.rows.length === 0) {
    console.log(
      `bench:recipe: ${summaryPath} does not exist yet: ${ref.length} reference SAEs trained` +
        `${
          refJson ? ` and saved to ${refJson}; rerun with the same flags after the sae stage` : ""
        }`,
    );
    return;
  }

  const projTokens = new Set(
    project.rows.map((r) => r.train_tokens).filter((x) => x !== undefined),
  );
  if (projTokens.size > 0 && ![...projTokens].every((x) => x === steps * batch)) {
    console.log(
      `bench:recipe: note: the project's SAEs saw [${[...projTokens]}] training tokens, the ` +
        `reference ${steps * batch} (${steps} batches of ${batch})`,
    );
  }
  const refTable = ref.map(({ resamples: _r, ...r }) => r);
  await writeParquet(join(resultsDir, run, "recipe_ref.parquet"), arrow.tableFromJSON(refTable));

  const compare = [];
  const lines: string[][] = [[
    "init",
    "size",
    "runs p/r",
    "dead p / r",
    "fve p / r",
    "L0 p / r",
    "tok/s p / r",
    "agree",
  ]];
  let allAgree = true;
  for (const init of inits) {
    for (const size of sizes) {
      const p = project.rows.filter((r) => r.init === init && r.size === size);
      const r = ref.filter((x) => x.init === init && x.size === size);
      if (r.length === 0) continue;
      if (p.length === 0) {
        lines.push([init, String(size), `0/${r.length}`, "no project SAE", "", "", "", "-"]);
        continue;
      }
      const cells: string[] = [];
      let agreeAll = true;
      for (const m of METRICS) {
        const a = agreement(m, size, p.map((x) => x[m]), r.map((x) => x[m]));
        agreeAll &&= a.agree;
        const digits = m === "l0" ? 1 : 3;
        cells.push(`${fmtMs(a.p, digits)} / ${fmtMs(a.r, digits)} ${a.agree ? "ok" : "DIFF"}`);
        compare.push({
          run,
          init,
          size,
          metric: m,
          project_mean: a.p.mean,
          project_sd: a.p.sd,
          project_n: a.p.n,
          reference_mean: a.r.mean,
          reference_sd: a.r.sd,
          reference_n: a.r.n,
          delta: a.delta,
          pooled_sd: a.pooled,
          floor: a.floor,
          tolerance: a.tolerance,
          agree: a.agree,
          project_tokens_per_s: meanSd(p.map((x) => x.tokens_per_s ?? NaN)).mean,
          reference_tokens_per_s: meanSd(r.map((x) => x.tokens_per_s ?? NaN)).mean,
        });
      }
      allAgree &&= agreeAll;
      const tps = (xs: SaeResult[]) =>
        Math.round(meanSd(xs.map((x) => x.tokens_per_s ?? NaN)).mean).toLocaleString("en-US");
      lines.push([
        init,
        String(size),
        `${p.length}/${r.length}`,
        ...cells,
        `${tps(p)} / ${tps(r)}`,
        agreeAll ? "yes" : "NO",
      ]);
    }
  }
  if (compare.length > 0) {
    await writeParquet(
      join(resultsDir, run, "recipe_compare.parquet"),
      arrow.tableFromJSON(compare),
    );
  }
  const widths = lines[0].map((_, j) => Math.max(...lines.map((l) => (l[j] ?? "").length)));
  for (const l of lines) console.log(l.map((c, j) => c.padEnd(widths[j])).join("  ").trimEnd());
  const heldout = ref[0]?.heldout_tokens as number | undefined;
  console.log(
    `p = project (results/${run}/sae/summary.parquet${
      project.skipped ? `, ${project.skipped} non-ReLU rows skipped` : ""
    }${project.hasInit ? "" : `, no init column: taken as ${configInit}`}), r = reference; ` +
      `held-out tokens ${heldout} (density resolution ${
        heldout ? (1 / heldout).toExponential(1) : "?"
      }). ` +
      `Agree: |Δmean| ≤ max(2 × pooled SD, floor); floors fve 0.02, L0 max(1, 10%), ` +
      `dead max(0.02, 2·sqrt(p(1−p)/size)).`,
  );
  const fewest = Math.min(
    ...inits.flatMap((i) =>
      sizes.map((n) => project.rows.filter((r) => r.init === i && r.size === n).length)
    ),
    seeds.length,
  );
  if (fewest < 3) {
    console.log(
      `bench:recipe: note: ${fewest} run(s) on a side; the spread is then poorly known and the ` +
        `verdicts lean on the floors (use --seeds 0,1,2 and sae.seeds ≥ 3 for a real check)`,
    );
  }
  console.log(
    `bench:recipe: ${allAgree ? "all agree" : "some differ"}; wrote results/${run}/recipe_compare` +
      `.parquet and recipe_ref.parquet in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`bench:recipe: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
