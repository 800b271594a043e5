/**
 * The scorers' input from a features-stage examples table (examples.parquet): one FeatureInput
 * per feature, each example with its held-out sequence and the position of its first context
 * token (pos − centre_index), which is what the split between explainer and scorers goes by.
 *
 * @module
 */
import type { Table } from "apache-arrow";
import type { FeatureInput } from "./types.ts";

/** The columns read from examples.parquet. */
export const EXAMPLE_COLUMNS = [
  "feature",
  "kind",
  "seq",
  "pos",
  "centre_index",
  "context_text",
  "context_acts",
];

/** One FeatureInput per feature of an examples table, in order of first appearance. */
export function featureInputsFromTable(t: Table): Map<number, FeatureInput> {
  const column = (name: string) => {
    const c = t.getChild(name);
    if (!c) throw new Error(`Examples table has no column "${name}"`);
    return c;
  };
  const feature = column("feature").toArray() as Int32Array;
  const kind = column("kind").toArray() as string[];
  const seq = column("seq").toArray() as Int32Array;
  const pos = column("pos").toArray() as Int32Array;
  const centre = column("centre_index").toArray() as Int32Array;
  const text = column("context_text"), acts = column("context_acts");
  const out = new Map<number, FeatureInput>();
  for (let i = 0; i < t.numRows; i++) {
    const f = feature[i];
    if (!out.has(f)) out.set(f, { id: f, top: [], quantiles: [], random: [] });
    const ex = {
      tokens: Array.from(text.get(i)!.toArray() as string[]),
      acts: Array.from(acts.get(i)!.toArray() as Float32Array),
      seq: seq[i],
      start: pos[i] - centre[i],
    };
    const input = out.get(f)!;
    if (kind[i] === "top") input.top.push(ex);
    else if (kind[i] === "quantile") input.quantiles!.push(ex);
    else input.random.push(ex);
  }
  return out;
}
