/**
 * The run configuration: one typed object that every stage reads, built from a preset, an optional
 * JSON file and `--set key=value` overrides, and validated on creation (unknown keys and wrong types
 * are errors that name the key).
 *
 * Presets: `test` (seconds; the tests use it), `demo` (the embedded default corpus; the whole
 * pipeline on 2 cores), `study` (the scaling question at 10M SAE tokens, ~2.5 h on 2 cores) and
 * `paper` (the seed paper's scale: real corpora over http, a GPU).
 *
 * @module
 */
import { readJson } from "../io/mod.ts";
import {
  ACTIVATION_STORES,
  AUTOINTERP_SELECTS,
  BACKEND_CHOICES,
  type ConfigKey,
  ENCODERS,
  MAX_TOKENS_FIELDS,
  type RunConfig,
  SAE_ARCHITECTURE_CHOICES,
  SAE_INITS,
  SAE_KERNELS,
  SAE_REVIVE_CHOICES,
  SOURCE_KINDS,
} from "./config_types.ts";
import { PRESETS } from "./presets.ts";

export const PRESET_NAMES = Object.keys(PRESETS);

/** A constraint beyond "same type as the demo preset's value"; `above` is an exclusive minimum. */
interface Rule {
  int?: boolean;
  min?: number;
  above?: number;
  max?: number;
  oneOf?: readonly string[];
}

/**
 * Extra constraints, by key (a key that RunConfig lacks does not compile). The fixed choices are
 * the constants of mod/run/config_types.ts, which also type the keys.
 */
const RULES: Partial<Record<ConfigKey, Rule>> = {
  "seed": { int: true, min: 0 },
  "backend": { oneOf: BACKEND_CHOICES },
  "mix.rows": { int: true, min: 1 },
  "mix.maxDocChars": { int: true, min: 100 },
  "tokenize.contextLength": { int: true, min: 2, max: 65536 },
  "tokenize.valFraction": { min: 0, max: 0.5 },
  "tokenize.encoder": { oneOf: ENCODERS },
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
  "activations.store": { oneOf: ACTIVATION_STORES },
  "sae.sizes": { int: true, min: 1 },
  "sae.architecture": { oneOf: SAE_ARCHITECTURE_CHOICES },
  "sae.architectures": { oneOf: SAE_ARCHITECTURE_CHOICES },
  "sae.k": { int: true, min: 1 },
  "sae.l1Coefficient": { min: 0 },
  "sae.gatedL1Coefficient": { min: 0 },
  "sae.l0Coefficient": { min: 0 },
  "sae.jumpreluBandwidth": { above: 0 },
  "sae.jumpreluInitThreshold": { above: 0 },
  "sae.revive": { oneOf: SAE_REVIVE_CHOICES },
  "sae.auxkCoefficient": { min: 0 },
  "sae.lr": { above: 0 },
  "sae.batchSize": { int: true, min: 1 },
  "sae.microBatch": { int: true, min: 1 },
  "sae.inits": { oneOf: SAE_INITS },
  "sae.seeds": { int: true, min: 1 },
  "sae.warmupSteps": { int: true, min: 0 },
  "sae.resampleSteps": { int: true, min: 1 },
  "sae.deadWindow": { int: true, min: 1 },
  "sae.resampleInputs": { int: true, min: 1 },
  "sae.kernel": { oneOf: SAE_KERNELS },
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
  "autointerp.select": { oneOf: AUTOINTERP_SELECTS },
  "autointerp.n": { int: true, min: 1 },
  "autointerp.features": { int: true, min: 0 },
  "autointerp.densityMin": { min: 0, max: 1 },
  "autointerp.densityMax": { min: 0, max: 1 },
  "autointerp.concurrency": { int: true, min: 1, max: 64 },
  "autointerp.timeoutS": { min: 1 },
  "autointerp.maxRetries": { int: true, min: 0 },
  "autointerp.maxTokensField": { oneOf: MAX_TOKENS_FIELDS },
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
    } else if (ruleOf(path)) {
      // An empty default list (steer.features, sae.architectures): its rule says what items are,
      // strings for a list of choices, else numbers.
      const item0 = ruleOf(path)!.oneOf ? "" : 0;
      value.forEach((item, i) => validateAgainst(item, item0, `${path}[${i}]`));
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
  const rule = ruleOf(path.replace(/\[\d+\]/g, ""));
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
    if (rule.above !== undefined && !(value > rule.above)) {
      throw new Error(`Config key "${path}" must be above ${rule.above}, got ${value}`);
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

function ruleOf(path: string): Rule | undefined {
  return RULES[path as ConfigKey];
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
  if (!(SOURCE_KINDS as readonly string[]).includes(kind)) {
    throw new Error(
      `Config key "${path}.kind" must be one of ${SOURCE_KINDS.join(", ")}, got "${kind}"`,
    );
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
  // A string template keeps the raw text ("--set run=007" stays "007"); a list template takes a
  // comma list of words ("--set sae.architectures=relu,topk"; "" = the empty list).
  node[last] = typeof tnode[last] === "string" && typeof value !== "string"
    ? String(value)
    : Array.isArray(tnode[last]) && typeof value === "string"
    ? value.split(",").map((w) => w.trim()).filter((w) => w !== "")
    : value;
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
  if (new Set(c.sae.architectures).size !== c.sae.architectures.length) {
    throw new Error(
      `Config key "sae.architectures" must list distinct architectures, got ${
        JSON.stringify(c.sae.architectures)
      }`,
    );
  }
  if (c.sae.resampleSteps.some((r, i) => i > 0 && r <= c.sae.resampleSteps[i - 1])) {
    throw new Error(
      `Config key "sae.resampleSteps" must be increasing, got [${c.sae.resampleSteps}]`,
    );
  }
  if (c.sae.resampleSteps.length > 0 && c.sae.resampleSteps[0] < c.sae.deadWindow) {
    throw new Error(
      `Config key "sae.resampleSteps" starts at step ${c.sae.resampleSteps[0]}, before ` +
        `sae.deadWindow (${c.sae.deadWindow}) steps have passed, so no feature could count as dead`,
    );
  }
  if (c.steer.prompts.includes("")) {
    throw new Error(`Config key "steer.prompts" holds an empty prompt`);
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
