/**
 * An SAE's folder in SAELens's layout: sae.safetensors (run layout's name for the weights) and
 * cfg.json, for every architecture, under SAELens's tensor and config names:
 *
 *   architecture  tensors                                       cfg.json beyond d_in, d_sae
 *   standard      W_enc b_enc W_dec b_dec                       l1_coefficient
 *   topk          W_enc b_enc W_dec b_dec                       k (aux_loss_coefficient, aux_k)
 *   batchtopk     W_enc b_enc W_dec b_dec threshold [d_sae]     k, topk_threshold_lr (aux_…)
 *   jumprelu      W_enc b_enc W_dec b_dec threshold [d_sae]     l0_coefficient, jumprelu_bandwidth,
 *                                                               jumprelu_init_threshold
 *   gated         W_enc b_gate b_mag r_mag W_dec b_dec          l1_coefficient
 *
 * Renamed on the way out (and back in by loadSae): jumprelu trains log_threshold and saves
 * threshold = exp(log_threshold), as SAELens does; gated's gate bias (sae.bEncF) is b_gate;
 * batchtopk's single running threshold θ is saved as d_sae copies, the JumpReLU form SAELens
 * converts a BatchTopK SAE to for inference (its architecture here stays "batchtopk", with k).
 *
 * @module
 */
import { readJson, readSafetensors, writeJsonAtomic, writeSafetensors } from "../io/mod.ts";
import { SAE_FILES } from "../run/mod.ts";
import {
  fromArrays,
  type Sae,
  type SaeArchitecture,
  type SaeConfig,
  saeShapes,
  toArrays,
  validateSaeConfig,
} from "./sae.ts";

/** File names inside an SAE folder: the run layout's (mod/run/layout.ts). */
const SAE_WEIGHTS_FILE = SAE_FILES.weights;
const SAE_CFG_FILE = SAE_FILES.cfg;

/** SAELens-style cfg.json contents for this SAE, with the caller's provenance fields on top. */
export function saeCfgJson(sae: Sae, cfgExtra: Record<string, unknown> = {}) {
  const { cfg } = sae;
  const arch = cfg.architecture;
  const auxk = (arch === "topk" || arch === "batchtopk") && (cfg.auxkCoefficient ?? 0) > 0
    ? { aux_loss_coefficient: cfg.auxkCoefficient, aux_k: cfg.auxK ?? Math.floor(cfg.dIn / 2) }
    : {};
  const byArch: Record<SaeArchitecture, Record<string, unknown>> = {
    standard: {},
    topk: { k: cfg.k, ...auxk },
    batchtopk: { k: cfg.k, topk_threshold_lr: cfg.thresholdRate ?? 0.01, ...auxk },
    jumprelu: {
      l0_coefficient: cfg.l0Coefficient ?? 0,
      jumprelu_bandwidth: cfg.bandwidth ?? 1e-3,
      jumprelu_init_threshold: cfg.initThreshold ?? 1e-3,
    },
    gated: {},
  };
  return {
    d_in: cfg.dIn,
    d_sae: cfg.dSae,
    architecture: arch,
    dtype: "float32",
    l1_coefficient: cfg.l1Coefficient,
    ...byArch[arch],
    apply_b_dec_to_input: true,
    normalize_activations: "none",
    device: "cpu",
    ...cfgExtra,
  };
}

/** The saved tensors (SAELens names and shapes) from the training ones. */
export function toSaved(
  cfg: SaeConfig,
  w: Record<string, Float32Array>,
): Record<string, { shape: number[]; data: Float32Array }> {
  const { dIn, dSae } = cfg;
  const out: Record<string, { shape: number[]; data: Float32Array }> = {
    W_enc: { shape: [dIn, dSae], data: w.W_enc },
  };
  if (cfg.architecture === "gated") {
    out.b_gate = { shape: [dSae], data: w.b_enc };
    out.b_mag = { shape: [dSae], data: w.b_mag };
    out.r_mag = { shape: [dSae], data: w.r_mag };
  } else out.b_enc = { shape: [dSae], data: w.b_enc };
  out.W_dec = { shape: [dSae, dIn], data: w.W_dec };
  out.b_dec = { shape: [dIn], data: w.b_dec };
  if (cfg.architecture === "jumprelu") {
    out.threshold = { shape: [dSae], data: w.log_threshold.map(Math.exp) };
  } else if (cfg.architecture === "batchtopk") {
    out.threshold = { shape: [dSae], data: new Float32Array(dSae).fill(w.threshold[0]) };
  }
  return out;
}

/** The training tensors from the saved ones (the inverse of toSaved). */
function fromSaved(cfg: SaeConfig, saved: Record<string, Float32Array>) {
  const w: Record<string, Float32Array> = { ...saved };
  if (cfg.architecture === "gated") {
    w.b_enc = saved.b_gate;
    delete w.b_gate;
  } else if (cfg.architecture === "jumprelu") {
    w.log_threshold = saved.threshold.map(Math.log);
    delete w.threshold;
  } else if (cfg.architecture === "batchtopk") w.threshold = saved.threshold.slice(0, 1);
  return w;
}

/** Writes `dir`/sae.safetensors and `dir`/cfg.json (atomically). */
export async function saveSae(
  dir: string,
  sae: Sae,
  cfgExtra: Record<string, unknown> = {},
): Promise<void> {
  const tensors = toSaved(sae.cfg, await toArrays(sae));
  await writeSafetensors(`${dir}/${SAE_WEIGHTS_FILE}`, tensors, { format: "pt" });
  await writeJsonAtomic(`${dir}/${SAE_CFG_FILE}`, saeCfgJson(sae, cfgExtra));
}

/** The SaeConfig a cfg.json describes (SAELens's keys, with this project's defaults). */
function cfgFromJson(j: Record<string, unknown>): SaeConfig {
  const num = (key: string) => j[key] as number | undefined;
  return {
    dIn: j.d_in as number,
    dSae: j.d_sae as number,
    architecture: (j.architecture ?? "standard") as SaeArchitecture,
    k: num("k"),
    l1Coefficient: num("l1_coefficient") ?? 0,
    l0Coefficient: num("l0_coefficient"),
    bandwidth: num("jumprelu_bandwidth"),
    initThreshold: num("jumprelu_init_threshold"),
    auxkCoefficient: num("aux_loss_coefficient"),
    auxK: num("aux_k"),
    thresholdRate: num("topk_threshold_lr"),
  };
}

/** Reads an SAE folder written by saveSae (or SAELens, for the layouts in the module header). */
export async function loadSae(
  dir: string,
): Promise<{ sae: Sae; cfgJson: Record<string, unknown> }> {
  const cfgPath = `${dir}/${SAE_CFG_FILE}`, weightsPath = `${dir}/${SAE_WEIGHTS_FILE}`;
  const cfgJson = await readJson<Record<string, unknown>>(cfgPath);
  const cfg = cfgFromJson(cfgJson);
  for (const [key, v] of Object.entries(cfg)) if (v === undefined) delete cfg[key as "k"];
  try {
    validateSaeConfig(cfg);
  } catch (e) {
    throw new Error(`Cannot read "${cfgPath}": ${(e as Error).message}`);
  }
  const { tensors } = await readSafetensors(weightsPath);
  const expected = toSaved(cfg, placeholders(cfg));
  const arrays: Record<string, Float32Array> = {};
  for (const [name, { shape }] of Object.entries(expected)) {
    const t = tensors[name];
    if (!t) throw new Error(`Cannot read "${weightsPath}": tensor "${name}" is missing`);
    if (t.shape.join(",") !== shape.join(",") || !(t.data instanceof Float32Array)) {
      throw new Error(
        `Cannot read "${weightsPath}": tensor "${name}" has shape [${t.shape}] (${t.dtype}), ` +
          `expected [${shape}] float32 from ${SAE_CFG_FILE}`,
      );
    }
    arrays[name] = t.data;
  }
  return { sae: fromArrays(cfg, fromSaved(cfg, arrays)), cfgJson };
}

/** Zero arrays of the training shapes (to ask toSaved which saved shapes to expect). */
function placeholders(cfg: SaeConfig): Record<string, Float32Array> {
  return Object.fromEntries(
    Object.entries(saeShapes(cfg)).map((
      [n, s],
    ) => [n, new Float32Array(s.reduce((a, b) => a * b))]),
  );
}
