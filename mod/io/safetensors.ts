/**
 * safetensors read and write (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian header length, a JSON header naming each tensor's dtype, shape and byte range, then
 * the raw little-endian data. F32, F16, I32 and U16 are supported here; any safetensors reader
 * (Python's safetensors, SAELens, candle) can open what this writes.
 *
 * @module
 */
import { writeFileAtomic } from "./fs.ts";

export type Dtype = "F32" | "F16" | "I32" | "U16" | "I64";
const BYTES: Record<Dtype, number> = { F32: 4, F16: 2, I32: 4, U16: 2, I64: 8 };

export interface NamedTensor {
  dtype?: Dtype;
  shape: number[];
  data: Float32Array | Int32Array | Uint16Array | BigInt64Array;
}

export interface SafetensorsFile {
  tensors: Record<
    string,
    { dtype: Dtype; shape: number[]; data: Float32Array | Int32Array | Uint16Array | BigInt64Array }
  >;
  metadata: Record<string, string>;
}

function dtypeOf(t: NamedTensor): Dtype {
  if (t.dtype) return t.dtype;
  if (t.data instanceof Float32Array) return "F32";
  if (t.data instanceof Int32Array) return "I32";
  if (t.data instanceof Uint16Array) return "U16";
  return "I64";
}

/** Encodes tensors (and string metadata) as safetensors bytes. Names are written sorted. */
export function encodeSafetensors(
  tensors: Record<string, NamedTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    const dtype = dtypeOf(t);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new Error(
        `Tensor "${name}": shape [${t.shape}] holds ${count} values but data has ${t.data.length}`,
      );
    }
    const nbytes = count * BYTES[dtype];
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + nbytes] };
    offset += nbytes;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
  const pad = (8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8;
  json += " ".repeat(pad);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const name of names) {
    const t = tensors[name];
    const dtype = dtypeOf(t);
    let bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (dtype === "F16" && t.data instanceof Float32Array) bytes = toFloat16Bytes(t.data);
    out.set(bytes, pos);
    pos += bytes.length;
  }
  return out;
}

/** Decodes safetensors bytes; F16 tensors come back widened to Float32Array. */
export function decodeSafetensors(bytes: Uint8Array, label = "safetensors data"): SafetensorsFile {
  if (bytes.length < 8) {
    throw new Error(`Cannot read ${label}: file is too short (corrupt or truncated)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen <= 0 || 8 + headerLen > bytes.length) {
    throw new Error(
      `Cannot read ${label}: header length ${headerLen} is out of range (corrupt or truncated)`,
    );
  }
  let header: Record<string, { dtype: Dtype; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
  } catch {
    throw new Error(`Cannot read ${label}: header is not valid JSON (corrupt or truncated)`);
  }
  if (!header || typeof header !== "object" || Array.isArray(header)) {
    throw new Error(`Cannot read ${label}: header is not a JSON object (corrupt or truncated)`);
  }
  const base = 8 + headerLen;
  const tensors: SafetensorsFile["tensors"] = {};
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = info as unknown as Record<string, string>;
      continue;
    }
    if (!validEntry(info)) {
      throw new Error(`Cannot read ${label}: tensor "${name}" has a malformed header entry`);
    }
    const [start, end] = info.data_offsets;
    if (!(info.dtype in BYTES)) {
      throw new Error(`Cannot read ${label}: tensor "${name}" has unsupported dtype ${info.dtype}`);
    }
    const count = info.shape.reduce((a: number, b: number) => a * b, 1);
    if (end - start !== count * BYTES[info.dtype] || base + end > bytes.length || start < 0) {
      throw new Error(
        `Cannot read ${label}: tensor "${name}" has a bad byte range (corrupt or truncated)`,
      );
    }
    const slice = bytes.slice(base + start, base + end); // copy: aligned and detached from the file
    let data: Float32Array | Int32Array | Uint16Array | BigInt64Array;
    if (info.dtype === "F32") data = new Float32Array(slice.buffer);
    else if (info.dtype === "I32") data = new Int32Array(slice.buffer);
    else if (info.dtype === "U16") data = new Uint16Array(slice.buffer);
    else if (info.dtype === "I64") data = new BigInt64Array(slice.buffer);
    else data = fromFloat16Bytes(slice);
    tensors[name] = { dtype: info.dtype === "F16" ? "F32" : info.dtype, shape: info.shape, data };
  }
  return { tensors, metadata };
}

/** A header entry with a string dtype, a shape of non-negative integers and two byte offsets. */
function validEntry(info: unknown): boolean {
  const e = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
  const ints = (v: unknown, n?: number) =>
    Array.isArray(v) && (n === undefined || v.length === n) &&
    v.every((x) => Number.isSafeInteger(x) && x >= 0);
  return !!e && typeof e === "object" && typeof e.dtype === "string" && ints(e.shape) &&
    ints(e.data_offsets, 2);
}

export async function writeSafetensors(
  path: string,
  tensors: Record<string, NamedTensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot read "${path}": file does not exist`);
    }
    throw e;
  }
  return decodeSafetensors(bytes, `"${path}"`);
}

function toFloat16Bytes(src: Float32Array): Uint8Array {
  const out = new Uint16Array(src.length);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  for (let i = 0; i < src.length; i++) {
    f[0] = src[i];
    const x = u[0];
    const sign = (x >>> 16) & 0x8000;
    let exp = ((x >>> 23) & 0xff) - 127 + 15;
    let mant = x & 0x7fffff;
    if (((x >>> 23) & 0xff) === 0xff) { // Inf or NaN
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    if (exp >= 0x1f) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (exp <= 0) {
      if (exp < -10) {
        out[i] = sign;
        continue;
      }
      mant = (mant | 0x800000) >>> (1 - exp);
      out[i] = sign | ((mant + 0x1000) >>> 13);
      continue;
    }
    const rounded = mant + 0x1000; // round half up on the dropped bits
    if (rounded & 0x800000) {
      mant = 0;
      exp += 1;
      if (exp >= 0x1f) {
        out[i] = sign | 0x7c00;
        continue;
      }
    } else mant = rounded;
    out[i] = sign | (exp << 10) | (mant >>> 13);
  }
  return new Uint8Array(out.buffer);
}

function fromFloat16Bytes(bytes: Uint8Array): Float32Array {
  const h = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) {
    const s = h[i] & 0x8000 ? -1 : 1;
    const e = (h[i] >>> 10) & 0x1f;
    const m = h[i] & 0x3ff;
    out[i] = e === 0
      ? s * m * 2 ** -24
      : e === 0x1f
      ? (m ? NaN : s * Infinity)
      : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return out;
}
