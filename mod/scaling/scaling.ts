/**
 * The scaling analysis: how L0, the dead / ultra-low fraction and the variance explained change
 * with SAE size, per (architecture, initialisation), pooled over replicate SAEs (seeds). Each
 * architecture is its own question: its SAEs are never pooled with another's, and the fits say
 * which architecture they belong to. The scaling stage (tasks/scaling.ts) reads
 * the files and writes what `analyseScaling` returns; this module does no I/O beyond reading one
 * Arrow table.
 *
 * What is tested, and why (the seed paper: "the number of 'active' features stays relatively
 * constant", and the dead / ultra-low share "grew consistently" with size):
 * - L0: log10 L0 on log10 size; null slope 0. The old test, log10(L0 / size) against slope −1,
 *   was true by construction: L0 / size falls as 1/size whenever L0 does not trend.
 * - dead or ultra-low fraction (never fired, or density < features.ultraLow): the raw fraction on
 *   log10 size, slope = change in fraction per tenfold size; null slope 0. Not its logit: a logit
 *   needs a continuity correction for 0 counts, (k + ½)/(F + 1), which depends on the size F and
 *   so invents a falling trend when every SAE has no dead feature. Ultra-low is only resolvable
 *   when 1 / heldout_tokens < features.ultraLow; otherwise the class is "dead or below the
 *   resolution", and every label carries the resolution.
 * - alive fraction, log-log: descriptive only (slope −1 = a constant count of alive features,
 *   0 = a constant share).
 * - fve (fraction of variance explained) on log10 size: descriptive, the reconstruction side of
 *   the comparison (a bigger dictionary at the same L0 should explain more).
 * - TopK and BatchTopK set L0 by k, so their L0 fit is no test of the paper; the verdict says so.
 *
 * How: per (architecture, init), ordinary least squares on the per-size means of the replicates (for L0, the
 * mean of log10 L0), with a Student-t interval on the slope, df = sizes − 2 (mod/scaling/fit.ts). Means
 * rather than pooling every SAE as its own point, because the SAEs of one size share their
 * activations, hyperparameters and training budget: a size's deviation from the line is common to
 * its replicates, and pooling them as independent points shrinks the interval by up to √(replicates)
 * with no evidence for it (tests/fit_test.ts shows pooled points undercover when sizes carry such a
 * shared deviation). The per-size mean still carries training noise, which is in the residuals.
 * With one replicate per size it is the same fit as pooling. Per size, every statistic also gets
 * its mean and a t interval across replicates (n − 1 df), or the single value when n = 1.
 *
 * @module
 */
import type * as arrow from "apache-arrow";
import {
  type LineFit,
  type MeanInterval,
  meanInterval,
  olsFit,
  trend,
  trendVerdict,
} from "./fit.ts";

/** The initialisations the SAE stage knows: the 2023 recipe and the 2024 encoder-parallel one. */
export const DEFAULT_INIT = "independent";

/** One trained SAE, as the sae stage's summary.parquet describes it. */
export interface SaeResult {
  /** Folder under results/<run>/sae/: f<N> for the primary SAE of size N. */
  name: string;
  size: number;
  init: string;
  replicate: number;
  seed: number;
  /** As the config names it (relu, topk, ...); "standard" in older summaries reads as relu. */
  architecture: string;
  heldoutTokens: number;
  l0: number;
  fve: number;
  deadFraction: number;
  alive: number;
}

/** What the analysis needs beyond the summary: the feature_stats count of dead or ultra-low. */
export interface SaeScalingInput extends SaeResult {
  /** Features that never fired or fired on a fraction of tokens below the ultra-low threshold. */
  deadOrUltraLow: number;
  /** CE loss recovered (the features stage measures it for the browsed SAEs only). */
  lossRecovered?: number | null;
  /**
   * The SAE of its (architecture, size) that the features stage reads (first init, replicate 0;
   * mod/run/layout.ts browsedSlots); default: the one named f<N>.
   */
  browsed?: boolean;
}

/** Statistics summarised per (architecture, init, size), in the order the Parquet columns take. */
export const SIZE_STATS = [
  "l0",
  "fve",
  "dead_fraction",
  "dead_or_ultra_low_fraction",
  "alive_fraction",
] as const;
export type SizeStat = typeof SIZE_STATS[number];

export interface SizeRow {
  architecture: string;
  init: string;
  size: number;
  replicates: number;
  /** Comma-separated folder names and seeds of the replicates. */
  names: string;
  seeds: string;
  /** The smallest held-out token count among the replicates, and its resolution 1 / N. */
  heldoutTokens: number;
  resolution: number;
  ultraLowThreshold: number;
  /** Whether 1 / N < the ultra-low threshold, i.e. ultra-low can be told from dead. */
  ultraLowResolved: boolean;
  /** The name of the dead or ultra-low class for these tokens, with the resolution. */
  deadOrUltraLowLabel: string;
  stats: Record<SizeStat, MeanInterval>;
  /** The browsed SAE (f<N> for the primary architecture) when in this group, with its loss recovered. */
  primary: string | null;
  lossRecovered: number | null;
}

export type FitStatistic = "l0" | "dead_or_ultra_low_fraction" | "alive_fraction" | "fve";

export interface FitRow {
  architecture: string;
  init: string;
  statistic: FitStatistic;
  /** "test" for the paper's claims, "descriptive" for the alive-fraction and fve fits. */
  role: "test" | "descriptive";
  /** What was regressed on what. */
  response: string;
  predictor: string;
  method: string;
  fit: LineFit;
  /** Sizes (points of the fit), SAEs behind them, and the fewest / most replicates of a size. */
  sizes: number;
  saes: number;
  replicatesMin: number;
  replicatesMax: number;
  /** The largest resolution among the SAEs of the fit (1 / fewest held-out tokens). */
  resolution: number;
  trend: string;
  verdict: string;
}

export interface ScalingAnalysis {
  sizes: SizeRow[];
  fits: FitRow[];
  /** Lines worth logging: points left out of a fit and why. */
  notes: string[];
}

/**
 * Reads summary.parquet rows. Columns of the one-row-per-SAE contract that an older summary lacks
 * take defaults: init = `defaults.init`, replicate 0, seed = `defaults.seed`, name f<size>,
 * architecture = `defaults.architecture` (else relu; the library's "standard" reads as relu).
 */
export function readSaeSummary(
  t: arrow.Table,
  defaults: { init?: string; seed?: number; architecture?: string } = {},
  label = "SAE summary",
): SaeResult[] {
  const has = (c: string) => t.schema.fields.some((f) => f.name === c);
  const col = (c: string) => {
    const v = t.getChild(c);
    if (!v) {
      const cols = t.schema.fields.map((f) => f.name).join(", ");
      throw new Error(`${label} has no column "${c}" (it has ${cols})`);
    }
    return v;
  };
  const num = (c: string, i: number) => Number(col(c).get(i));
  const str = (c: string, i: number) => {
    const v = col(c).get(i);
    return v === null || v === undefined ? null : String(v);
  };
  const out: SaeResult[] = [];
  for (let i = 0; i < t.numRows; i++) {
    const size = num("size", i);
    out.push({
      name: (has("name") ? str("name", i) : null) ?? `f${size}`,
      size,
      init: (has("init") ? str("init", i) : null) ?? defaults.init ?? DEFAULT_INIT,
      replicate: has("replicate") ? num("replicate", i) : 0,
      seed: has("seed") ? num("seed", i) : defaults.seed ?? 0,
      architecture: configArchitecture(
        (has("architecture") ? str("architecture", i) : null) || defaults.architecture || "relu",
      ),
      heldoutTokens: num("heldout_tokens", i),
      l0: num("l0", i),
      fve: num("fve", i),
      deadFraction: num("dead_fraction", i),
      alive: num("alive", i),
    });
  }
  const names = out.map((r) => r.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new Error(`${label} names SAE "${twice}" twice`);
  return out;
}

/** The dead or ultra-low class as these held-out tokens can resolve it, with the resolution. */
export function deadOrUltraLowLabel(heldoutTokens: number, ultraLow: number): string {
  const r = 1 / heldoutTokens;
  return r < ultraLow
    ? `dead or ultra-low (density < ${ultraLow.toExponential(0)}; resolution 1/N = ${
      r.toExponential(1)
    })`
    : `dead or below the resolution 1/N = ${r.toExponential(1)} (ultra-low < ${
      ultraLow.toExponential(0)
    } not resolvable in ${heldoutTokens.toLocaleString("en-US")} tokens)`;
}

/** The config's name of an architecture: the library's "standard" is the config's "relu". */
function configArchitecture(a: string): string {
  return a === "standard" ? "relu" : a;
}

/** Per (architecture, init, size) statistics and, per (architecture, init), four fits. */
export function analyseScaling(
  saes: SaeScalingInput[],
  opts: { ultraLow: number; level?: number },
): ScalingAnalysis {
  const level = opts.level ?? 0.95;
  const notes: string[] = [];
  const groups = new Map<string, { architecture: string; init: string }>();
  for (const s of saes) {
    const architecture = configArchitecture(s.architecture || "relu");
    groups.set(`${architecture}\0${s.init}`, { architecture, init: s.init });
  }
  // One architecture: notes read as before ("independent: ..."); several: "topk/independent: ...".
  const several = new Set([...groups.values()].map((g) => g.architecture)).size > 1;
  const sizes: SizeRow[] = [];
  const fits: FitRow[] = [];
  for (const { architecture, init } of groups.values()) {
    const label = several ? `${architecture}/${init}` : init;
    const mine = saes.filter((s) =>
      s.init === init && configArchitecture(s.architecture || "relu") === architecture
    );
    const bySize = new Map<number, SaeScalingInput[]>();
    for (const s of [...mine].sort((a, b) => a.size - b.size || a.replicate - b.replicate)) {
      bySize.set(s.size, [...(bySize.get(s.size) ?? []), s]);
    }
    for (const [size, group] of bySize) {
      const held = Math.min(...group.map((g) => g.heldoutTokens));
      const per: Record<SizeStat, number[]> = {
        l0: group.map((g) => g.l0),
        fve: group.map((g) => g.fve),
        dead_fraction: group.map((g) => g.deadFraction),
        dead_or_ultra_low_fraction: group.map((g) => g.deadOrUltraLow / g.size),
        alive_fraction: group.map((g) => g.alive / g.size),
      };
      const primary = group.find((g) => g.browsed ?? g.name === `f${size}`) ?? null;
      sizes.push({
        architecture,
        init,
        size,
        replicates: group.length,
        names: group.map((g) => g.name).join(","),
        seeds: group.map((g) => g.seed).join(","),
        heldoutTokens: held,
        resolution: 1 / held,
        ultraLowThreshold: opts.ultraLow,
        ultraLowResolved: 1 / held < opts.ultraLow,
        deadOrUltraLowLabel: deadOrUltraLowLabel(held, opts.ultraLow),
        stats: Object.fromEntries(
          SIZE_STATS.map((k) => [k, meanInterval(per[k], { level })]),
        ) as Record<SizeStat, MeanInterval>,
        primary: primary?.name ?? null,
        lossRecovered: primary?.lossRecovered ?? null,
      });
    }

    const fitOf = (
      statistic: FitStatistic,
      role: FitRow["role"],
      response: string,
      value: (s: SaeScalingInput) => number | null,
      words: (fit: LineFit, resolution: number) => string,
    ) => {
      const used = mine.filter((s) => {
        const v = value(s);
        return v !== null && Number.isFinite(v);
      });
      const left = mine.length - used.length;
      if (left > 0) {
        notes.push(`${label}: ${statistic}: ${left} SAE(s) left out (${response} undefined)`);
      }
      const byX = new Map<number, number[]>();
      for (const s of used) byX.set(s.size, [...(byX.get(s.size) ?? []), value(s)!]);
      if (byX.size < 2) {
        notes.push(`${label}: ${statistic}: ${byX.size} size(s), no line to fit`);
        return;
      }
      const xs = [...byX.keys()].sort((a, b) => a - b);
      const ys = xs.map((x) => byX.get(x)!.reduce((a, b) => a + b, 0) / byX.get(x)!.length);
      const fit = olsFit(xs.map(Math.log10), ys, { level });
      const reps = xs.map((x) => byX.get(x)!.length);
      const resolution = Math.max(...used.map((s) => 1 / s.heldoutTokens));
      fits.push({
        architecture,
        init,
        statistic,
        role,
        response,
        predictor: "log10(size)",
        method: `OLS on the per-size means of ${response} over replicates; Student-t interval ` +
          `on the slope, df = sizes - 2`,
        fit,
        sizes: xs.length,
        saes: used.length,
        replicatesMin: Math.min(...reps),
        replicatesMax: Math.max(...reps),
        resolution,
        trend: trend(fit),
        verdict: words(fit, resolution),
      });
    };
    const shape = (fit: LineFit, n: number, lo: number, hi: number) =>
      `${fit.n} sizes × ${lo === hi ? lo : `${lo}–${hi}`} replicate(s), ${n} SAEs`;
    const repsOf = (stat: (s: SaeScalingInput) => number | null) => {
      const counts = new Map<number, number>();
      for (const s of mine) {
        const v = stat(s);
        if (v !== null && Number.isFinite(v)) counts.set(s.size, (counts.get(s.size) ?? 0) + 1);
      }
      const c = [...counts.values()];
      return { n: c.reduce((a, b) => a + b, 0), lo: Math.min(...c), hi: Math.max(...c) };
    };

    const logL0 = (s: SaeScalingInput) => s.l0 > 0 ? Math.log10(s.l0) : null;
    const fixedL0 = mine.length > 0 && (architecture === "topk" || architecture === "batchtopk");
    fitOf("l0", "test", "log10(L0)", logL0, (fit) => {
      const r = repsOf(logL0);
      return trendVerdict(fit, {
        subject: "L0",
        units: "(log10 L0 per log10 size)",
        detail: shape(fit, r.n, r.lo, r.hi) +
          (fixedL0 ? `; ${architecture} sets L0 by k, so this is no test of the paper` : ""),
      });
    });

    const deadUl = (s: SaeScalingInput) => s.deadOrUltraLow / s.size;
    fitOf(
      "dead_or_ultra_low_fraction",
      "test",
      "dead or ultra-low fraction",
      deadUl,
      (fit, res) => {
        const r = repsOf(deadUl);
        const resolved = res < opts.ultraLow;
        return trendVerdict(fit, {
          subject: resolved
            ? "the dead or ultra-low fraction"
            : "the dead or below-resolution fraction",
          units: "per tenfold size",
          detail: `${shape(fit, r.n, r.lo, r.hi)}; ` +
            (resolved
              ? `ultra-low = density < ${opts.ultraLow.toExponential(0)}, resolution 1/N = ${
                res.toExponential(1)
              }`
              : `resolution 1/N = ${res.toExponential(1)} ≥ ${
                opts.ultraLow.toExponential(0)
              }, so ultra-low is not resolvable`),
        });
      },
    );

    const logAlive = (s: SaeScalingInput) => s.alive > 0 ? Math.log10(s.alive / s.size) : null;
    fitOf("alive_fraction", "descriptive", "log10(alive fraction)", logAlive, (fit) => {
      const r = repsOf(logAlive);
      return `descriptive, ${
        trendVerdict(fit, {
          subject: "the alive fraction",
          units: "(log-log)",
          detail: `${shape(fit, r.n, r.lo, r.hi)}; -1 = a constant count of alive features, ` +
            `0 = a constant share`,
        })
      }`;
    });

    const fve = (s: SaeScalingInput) => s.fve;
    fitOf("fve", "descriptive", "fve", fve, (fit) => {
      const r = repsOf(fve);
      return `descriptive, ${
        trendVerdict(fit, {
          subject: "the variance explained",
          units: "per tenfold size",
          detail: shape(fit, r.n, r.lo, r.hi),
        })
      }`;
    });
  }
  return { sizes, fits, notes };
}

/** A per-size statistic as one line: mean [low, high] (t interval) or the single value. */
export function intervalText(m: MeanInterval, digits = 3): string {
  const f = (v: number) => v.toFixed(digits);
  return m.kind === "t"
    ? `${f(m.mean)} [${f(m.low)}, ${f(m.high)}] (n ${m.n})`
    : `${f(m.mean)} (n 1)`;
}
