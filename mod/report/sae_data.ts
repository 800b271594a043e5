/**
 * One SAE's data for the feature browser, in the compact form the page loads:
 *
 *   index   per-feature columns (count, density, max and mean activation), the autointerp results
 *           when explanations.parquet exists, steering samples, and the token-string table that
 *           every shard's integer token ids point into; loaded when the SAE is selected
 *   shards  `shardSize` features each: examples (kind, rank, quantile bin, centre, token ids,
 *           activations at 3 significant digits) and top/bottom logits; loaded when one of their
 *           features is selected
 *
 * Reads results/<run>/sae/<name>/ (f<N> for the primary SAEs): feature_stats, examples and logits (features stage), and
 * steering and explanations when present.
 *
 * @module
 */
import { SAE_FILES } from "../run/mod.ts";
import { join } from "node:path";
import { exists } from "../io/mod.ts";
import { readParquet } from "../io/mod.ts";
import { hasColumn, listCol, numberCol, numbers, stringCol } from "./arrow_cols.ts";
import { contextTexts, round3, TokenTable } from "./compact.ts";

export const KIND_CODES: Record<string, number> = { top: 0, quantile: 1, random: 2 };

export interface Explanations {
  f: number[];
  text: (string | null)[];
  sim: (number | null)[];
  det: (number | null)[];
  fuzz: (number | null)[];
  /** Index into `models` of each row's explainer and simulator model. */
  em: number[];
  sm: number[];
  models: string[];
  err: (string | null)[];
}

export interface SteeringSample {
  f: number;
  scale: number;
  raw: number;
  prompt: string;
  plain: string;
  steered: string;
}

export interface SaeIndex {
  key: string;
  size: number;
  shardSize: number;
  shards: number;
  /** Held-out tokens behind the densities (1 / heldout is their resolution). */
  heldout: number;
  /** Quantile bins of the examples (labels the bins [b/Q, (b+1)/Q) × max). */
  bins: number;
  tokens: string[];
  count: number[];
  density: number[];
  maxAct: number[];
  meanAct: (number | null)[];
  expl: Explanations | null;
  steer: SteeringSample[];
}

/** Per feature: [kind, rank, quantile bin low (−1 if none), centre, activation, ids, acts or 0]. */
export type ExampleRow = [number, number, number, number, number, number[], number[] | 0];

export interface Shard {
  key: string;
  first: number;
  /** Per feature of the shard, its examples in the file's order (top, quantile, random). */
  e: ExampleRow[][];
  /** Per feature: [positive token ids, weights, negative token ids, weights], by rank. */
  l: [number[], number[], number[], number[]][];
}

export interface SaeData {
  index: SaeIndex;
  shards: Shard[];
}

/** Row indices grouped by feature (counting sort), each group in file order. */
function groupRows(feature: ArrayLike<number>, n: number, label: string): Int32Array[] {
  const counts = new Int32Array(n);
  for (let i = 0; i < feature.length; i++) {
    const f = feature[i];
    if (!(f >= 0 && f < n)) throw new Error(`${label}: feature ${f} is outside 0..${n - 1}`);
    counts[f]++;
  }
  const groups = Array.from(counts, (c) => new Int32Array(c));
  counts.fill(0);
  for (let i = 0; i < feature.length; i++) groups[feature[i]][counts[feature[i]]++] = i;
  return groups;
}

async function readExplanations(path: string): Promise<Explanations> {
  const t = await readParquet(path);
  const label = `Explanations "${path}"`;
  const opt = (name: string) =>
    hasColumn(t, name) ? numberCol(t, name, label) : new Array(t.numRows).fill(null);
  const optStr = (name: string) =>
    hasColumn(t, name) ? stringCol(t, name, label) : new Array(t.numRows).fill(null);
  const models: string[] = [];
  const model = (m: string | null) => {
    const s = m ?? "";
    const i = models.indexOf(s);
    return i >= 0 ? i : models.push(s) - 1;
  };
  return {
    f: numbers(t, "feature", label),
    text: stringCol(t, "explanation", label),
    sim: opt("simulation_score").map((x) => x === null ? null : round3(x)),
    det: opt("detection_f1").map((x) => x === null ? null : round3(x)),
    fuzz: opt("fuzzing_f1").map((x) => x === null ? null : round3(x)),
    em: optStr("explainer_model").map(model),
    sm: optStr("simulator_model").map(model),
    models,
    err: optStr("error"),
  };
}

async function readSteering(path: string): Promise<SteeringSample[]> {
  const t = await readParquet(path);
  const label = `Steering "${path}"`;
  const f = numbers(t, "feature", label), scale = numbers(t, "scale", label);
  const raw = numbers(t, "raw_scale", label);
  const prompt = stringCol(t, "prompt", label), plain = stringCol(t, "unsteered", label);
  const steered = stringCol(t, "steered", label);
  return f.map((x, i) => ({
    f: x,
    scale: scale[i],
    raw: round3(raw[i]),
    prompt: prompt[i] ?? "",
    plain: plain[i] ?? "",
    steered: steered[i] ?? "",
  }));
}

/**
 * Reads one SAE's folder into the page's index and shards. `tokenBytes` gives a GPT-2 token's
 * bytes (for whole-character token texts).
 */
export async function loadSaeData(
  dir: string,
  size: number,
  opts: {
    /** The SAE's key in the page (its folder name); default f<size>. */
    key?: string;
    shardSize: number;
    heldoutTokens: number;
    quantileBins: number;
    tokenBytes: (id: number) => Uint8Array;
  },
): Promise<SaeData> {
  const key = opts.key ?? `f${size}`;
  const statsPath = join(dir, SAE_FILES.featureStats);
  const stats = await readParquet(statsPath, {
    columns: ["count", "density", "mean_activation", "max_activation"],
  });
  const statsLabel = `Feature stats "${statsPath}"`;
  if (stats.numRows !== size) {
    throw new Error(`${statsLabel} has ${stats.numRows} rows, expected ${size} (one per feature)`);
  }
  const maxAct = numbers(stats, "max_activation", statsLabel);
  const table = new TokenTable();

  // Examples: token texts decoded per context, interned; ids renumbered once the table is done.
  const exPath = join(dir, SAE_FILES.examples);
  const ex = await readParquet(exPath, {
    columns: [
      "feature",
      "kind",
      "rank",
      "quantile",
      "activation",
      "context_tokens",
      "context_acts",
      "centre_index",
    ],
  });
  const exLabel = `Examples "${exPath}"`;
  const exFeature = numbers(ex, "feature", exLabel);
  const kind = stringCol(ex, "kind", exLabel), rank = numbers(ex, "rank", exLabel);
  const quantile = numberCol(ex, "quantile", exLabel);
  const centre = numbers(ex, "centre_index", exLabel);
  const activation = numbers(ex, "activation", exLabel);
  const toks = listCol(ex, "context_tokens", exLabel), acts = listCol(ex, "context_acts", exLabel);
  const textIds = new Int32Array(toks.values.length);
  const ids = toks.values as Int32Array;
  for (let r = 0; r < ex.numRows; r++) {
    const a = toks.offsets[r], b = toks.offsets[r + 1];
    contextTexts(ids.subarray(a, b), opts.tokenBytes).forEach((s, j) =>
      textIds[a + j] = table.intern(s)
    );
  }

  const lgPath = join(dir, SAE_FILES.logits);
  const lg = await readParquet(lgPath, {
    columns: ["feature", "sign", "rank", "token_text", "weight"],
  });
  const lgLabel = `Logits "${lgPath}"`;
  const lgFeature = numbers(lg, "feature", lgLabel), sign = stringCol(lg, "sign", lgLabel);
  const lgRank = numbers(lg, "rank", lgLabel), weight = numbers(lg, "weight", lgLabel);
  const lgText = stringCol(lg, "token_text", lgLabel).map((s) => table.intern(s ?? ""));

  const { strings, remap } = table.finish();
  const exGroups = groupRows(exFeature, size, exLabel);
  const lgGroups = groupRows(lgFeature, size, lgLabel);
  const shards: Shard[] = [];
  for (let first = 0; first < size; first += opts.shardSize) {
    const shard: Shard = { key: `${key}/${first / opts.shardSize}`, first, e: [], l: [] };
    for (let f = first; f < Math.min(size, first + opts.shardSize); f++) {
      shard.e.push(Array.from(exGroups[f], (r): ExampleRow => {
        const a = toks.offsets[r], b = toks.offsets[r + 1];
        const rowActs: number[] = [];
        let any = false;
        for (let j = a; j < b; j++) {
          const v = round3(acts.values[j]);
          rowActs.push(v);
          if (v !== 0) any = true;
        }
        return [
          KIND_CODES[kind[r] ?? ""] ?? 2,
          rank[r],
          quantile[r] === null ? -1 : round3(quantile[r]!),
          centre[r],
          round3(activation[r]),
          Array.from(textIds.subarray(a, b), (id) => remap[id]),
          any ? rowActs : 0,
        ];
      }));
      const rows = Array.from(lgGroups[f]).sort((x, y) => lgRank[x] - lgRank[y]);
      const side = (s: string) => rows.filter((r) => sign[r] === s);
      const pos = side("positive"), neg = side("negative");
      shard.l.push([
        pos.map((r) => remap[lgText[r]]),
        pos.map((r) => round3(weight[r])),
        neg.map((r) => remap[lgText[r]]),
        neg.map((r) => round3(weight[r])),
      ]);
    }
    shards.push(shard);
  }

  const explPath = join(dir, SAE_FILES.explanations);
  const steerPath = join(dir, SAE_FILES.steering);
  const index: SaeIndex = {
    key,
    size,
    shardSize: opts.shardSize,
    shards: shards.length,
    heldout: opts.heldoutTokens,
    bins: opts.quantileBins,
    tokens: strings,
    count: numbers(stats, "count", statsLabel),
    density: numbers(stats, "density", statsLabel).map(round3),
    maxAct: maxAct.map(round3),
    meanAct: numberCol(stats, "mean_activation", statsLabel).map((x) =>
      x === null ? null : round3(x)
    ),
    expl: (await exists(explPath)) ? await readExplanations(explPath) : null,
    steer: (await exists(steerPath)) ? await readSteering(steerPath) : [],
  };
  return { index, shards };
}
