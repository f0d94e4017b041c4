// The safetensors file format (Hugging Face), read and written without dependencies:
//
//   [8 bytes]  N, the header length, unsigned 64-bit little-endian
//   [N bytes]  UTF-8 JSON: { "<tensor name>": { "dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end] },
//                            ..., "__metadata__": { "<key>": "<string value>" } }
//   [rest]     the data section: every tensor's raw little-endian values, C order, at
//              data_offsets relative to the start of the section.
//
// The reader trusts nothing in a file: the header length, the JSON, every dtype, shape and
// offset are checked before anything is allocated from them, and each tensor's offsets must
// match its dtype and shape, follow the previous tensor's without gap or overlap, and together
// cover the data section exactly (the rules of the reference implementation). A bad file gives
// an ImagerateDataError whose message starts with the file's name.
//
// The writer pads the header with spaces so that the data section starts 8-byte aligned (as
// the Python library does), stores tensors in the order given, and writes atomically:
// `<file>.tmp-<pid>`, fsync, rename, so a reader never sees a half-written file.
import { open, rename, rm, readFile, stat, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { endianness } from 'node:os';
import { ImagerateDataError } from '../data/dataset.js';

/** Bytes per element of every dtype the format defines. */
export const DTYPE_BYTES = {
  F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1,
  I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
} as const;
export type SafetensorsDType = keyof typeof DTYPE_BYTES;

export type TensorValues =
  | Float64Array | Float32Array | BigInt64Array | Int32Array | Int16Array | Int8Array
  | BigUint64Array | Uint32Array | Uint16Array | Uint8Array;

export interface SafetensorsTensor {
  dtype: SafetensorsDType;
  shape: number[];
  /** F32 → Float32Array, I32 → Int32Array, F64 → Float64Array, I64 → BigInt64Array, F16/BF16 → Uint16Array (raw bits), BOOL/F8 → Uint8Array, ... */
  data: TensorValues;
}

export interface SafetensorsContents {
  tensors: Map<string, SafetensorsTensor>;
  /** The "__metadata__" block (string to string); empty when the file has none. */
  metadata: Record<string, string>;
}

/** A tensor to write; `data` may be a function, called when the writer reaches the tensor. */
export interface TensorToWrite {
  dtype: SafetensorsDType;
  shape: readonly number[];
  data: TensorValues | (() => TensorValues | Promise<TensorValues>);
}

/** Upper bound on the header, as in the reference implementation (100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';
const LITTLE_ENDIAN_HOST = endianness() === 'LE';

function typedArrayFor(dtype: SafetensorsDType, n: number): TensorValues {
  switch (dtype) {
    case 'F64': return new Float64Array(n);
    case 'F32': return new Float32Array(n);
    case 'I64': return new BigInt64Array(n);
    case 'I32': return new Int32Array(n);
    case 'I16': return new Int16Array(n);
    case 'I8': return new Int8Array(n);
    case 'U64': return new BigUint64Array(n);
    case 'U32': return new Uint32Array(n);
    case 'F16': case 'BF16': case 'U16': return new Uint16Array(n);
    case 'U8': case 'BOOL': case 'F8_E4M3': case 'F8_E5M2': return new Uint8Array(n);
  }
}

/** The typed-array class each dtype is written from (F16/BF16 as their raw 16-bit patterns). */
function matchesDType(dtype: SafetensorsDType, a: TensorValues): boolean {
  const expected = typedArrayFor(dtype, 0).constructor;
  return a.constructor === expected;
}

function byteSwapInPlace(bytes: Uint8Array, width: number): void {
  if (width === 1) return;
  for (let i = 0; i + width <= bytes.length; i += width) {
    for (let a = i, b = i + width - 1; a < b; a++, b--) {
      const t = bytes[a]; bytes[a] = bytes[b]; bytes[b] = t;
    }
  }
}

function bytesOf(a: TensorValues): Uint8Array {
  const view = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (LITTLE_ENDIAN_HOST || a.BYTES_PER_ELEMENT === 1) return view;
  const copy = Uint8Array.from(view);
  byteSwapInPlace(copy, a.BYTES_PER_ELEMENT);
  return copy;
}

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Reading

function describeJson(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Parses a whole safetensors file held in memory. `file` names it in error messages.
 * Throws ImagerateDataError on anything malformed; never allocates more than the file's size.
 */
export function parseSafetensors(bytes: Uint8Array, file: string): SafetensorsContents {
  const fail = (problem: string): never => {
    throw new ImagerateDataError(file, problem);
  };
  const size = bytes.length;
  if (size < 8) fail(`not a safetensors file: ${size} bytes, too short for the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(size - 8)) {
    fail(`truncated or not a safetensors file: header length ${n64} goes beyond the end of the file (${size} bytes)`);
  }
  const n = Number(n64);
  if (n > MAX_HEADER_BYTES) fail(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2) fail(`header length ${n} is too small to hold a JSON object`);

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail('header is not valid UTF-8');
  }
  if (!text.startsWith('{')) fail(`header does not start with '{' (got ${describeJson(text.slice(0, 20))})`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');

  const dataStart = 8 + n;
  const dataBytes = size - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDType; shape: number[]; begin: number; end: number }[] = [];

  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (info === null) continue;
      if (typeof info !== 'object' || Array.isArray(info)) fail(`${METADATA_KEY} is not an object of strings`);
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`${METADATA_KEY}.${k} is ${describeJson(v)}, not a string`);
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    const what = `tensor '${name}'`;
    if (typeof info !== 'object' || info === null || Array.isArray(info)) fail(`${what}: entry is ${describeJson(info)}, not an object`);
    for (const k of ['dtype', 'shape', 'data_offsets']) if (!Object.hasOwn(info as object, k)) fail(`${what}: entry has no ${k}`);
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) {
      fail(`${what}: unknown dtype ${describeJson(dtype)} (valid: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${what}: shape ${describeJson(shape)} is not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`${what}: data_offsets ${describeJson(offsets)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`${what}: data_offsets [${begin}, ${end}] end before they begin`);
    const count = elementCount(shape as number[]);
    const width = DTYPE_BYTES[dtype as SafetensorsDType];
    if (!Number.isSafeInteger(count * width) || count * width !== end - begin) {
      fail(`${what}: ${dtype} shape [${(shape as number[]).join(', ')}] needs ${count * width} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
    }
    entries.push({ name, dtype: dtype as SafetensorsDType, shape: shape as number[], begin, end });
  }

  // The tensors, in file order, must tile the data section exactly.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of entries) {
    if (e.begin !== at) {
      fail(e.begin < at
        ? `tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] overlap the previous tensor, which ends at ${at}`
        : `tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] leave a gap after byte ${at} of the data section`);
    }
    at = e.end;
  }
  if (at > dataBytes) {
    fail(`truncated: the tensors need ${at} bytes of data after the ${n}-byte header but the file has ${dataBytes}`);
  }
  if (at < dataBytes) fail(`the data section has ${dataBytes} bytes but the tensors cover only ${at} (trailing bytes)`);

  const tensors = new Map<string, SafetensorsTensor>();
  // Header order (JSON object order), which is the order the writer was given.
  const order = new Map(Object.keys(header as object).map((k, i) => [k, i]));
  entries.sort((a, b) => order.get(a.name)! - order.get(b.name)!);
  for (const e of entries) {
    const data = typedArrayFor(e.dtype, elementCount(e.shape)); // size checked above: <= the file's size
    const dst = new Uint8Array(data.buffer);
    dst.set(bytes.subarray(dataStart + e.begin, dataStart + e.end));
    if (!LITTLE_ENDIAN_HOST) byteSwapInPlace(dst, DTYPE_BYTES[e.dtype]);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

/** Reads and parses a safetensors file; a missing or unreadable file is an ImagerateDataError too. */
export async function readSafetensors(file: string): Promise<SafetensorsContents> {
  let bytes: Buffer;
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new ImagerateDataError(file, 'is not a regular file');
    bytes = await readFile(file);
  } catch (e) {
    if (e instanceof ImagerateDataError) throw e;
    throw new ImagerateDataError(file, fsProblem(e, 'cannot read', file));
  }
  return parseSafetensors(bytes, file);
}

/** What went wrong with `file`; a missing one is given with its full path, as the message starts with its base name. */
function fsProblem(e: unknown, verb: string, file: string): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') {
    return verb === 'cannot read' ? `no such file (looked for ${resolve(file)})` : `${verb}: no such directory (${dirname(resolve(file))})`;
  }
  if (code === 'EACCES' || code === 'EPERM') return `${verb}: permission denied`;
  if (code === 'EISDIR') return `${verb}: is a directory`;
  return `${verb}: ${(e as Error)?.message ?? String(e)}`;
}

// ---------------------------------------------------------------------------------------------
// Writing

function checkTensorSpec(name: string, t: { dtype: SafetensorsDType; shape: readonly number[] }): number {
  if (name === METADATA_KEY) throw new RangeError(`safetensors: '${METADATA_KEY}' cannot name a tensor`);
  if (!Object.hasOwn(DTYPE_BYTES, t.dtype)) throw new RangeError(`safetensors: tensor '${name}' has unknown dtype '${t.dtype}'`);
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new RangeError(`safetensors: tensor '${name}' has invalid shape [${t.shape.join(', ')}]`);
  }
  return elementCount(t.shape) * DTYPE_BYTES[t.dtype];
}

function checkValues(name: string, t: { dtype: SafetensorsDType; shape: readonly number[] }, a: TensorValues): void {
  if (!matchesDType(t.dtype, a)) {
    throw new TypeError(`safetensors: tensor '${name}' is ${t.dtype} but its values are a ${a.constructor.name}`);
  }
  if (a.length !== elementCount(t.shape)) {
    throw new RangeError(`safetensors: tensor '${name}' has shape [${t.shape.join(', ')}] (${elementCount(t.shape)} values) but ${a.length} values were given`);
  }
}

/** The 8-byte length and the space-padded JSON header for these tensors, in this order. */
export function encodeHeader(
  tensors: Iterable<[string, { dtype: SafetensorsDType; shape: readonly number[] }]>, metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = Object.create(null); // a tensor may be called "__proto__"
  if (Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new TypeError(`safetensors: metadata '${k}' must be a string`);
    }
    header[METADATA_KEY] = metadata;
  }
  let at = 0;
  for (const [name, t] of tensors) {
    if (Object.hasOwn(header, name)) throw new RangeError(`safetensors: tensor '${name}' given twice`);
    const bytes = checkTensorSpec(name, t);
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [at, at + bytes] };
    at += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const n = Math.ceil((8 + json.length) / 8) * 8 - 8; // data section 8-byte aligned
  const out = new Uint8Array(8 + n).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  return out;
}

function entriesOf<T>(tensors: Map<string, T> | Record<string, T>): [string, T][] {
  return tensors instanceof Map ? [...tensors] : Object.entries(tensors);
}

/** The whole file in memory (for small files and tests). */
export function encodeSafetensors(
  tensors: Map<string, SafetensorsTensor> | Record<string, SafetensorsTensor>, metadata: Record<string, string> = {},
): Uint8Array {
  const list = entriesOf(tensors);
  const header = encodeHeader(list, metadata);
  let total = header.length;
  for (const [name, t] of list) {
    checkValues(name, t, t.data);
    total += t.data.byteLength;
  }
  const out = new Uint8Array(total);
  out.set(header, 0);
  let at = header.length;
  for (const [, t] of list) {
    out.set(bytesOf(t.data), at);
    at += t.data.byteLength;
  }
  return out;
}

type ChunkWriter = (chunk: Uint8Array) => Promise<void>;

/**
 * Writes `file` atomically: `produce` writes the contents through `write` into
 * `<file>.tmp-<pid>`, which is then fsynced and renamed over `file`. If `produce` (or any
 * write) throws, the temporary file is removed and `file` is left as it was.
 * File-system failures become ImagerateDataError naming `file`.
 */
export async function writeFileAtomic(file: string, produce: (write: ChunkWriter) => Promise<void>): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const fsError = (e: unknown) => (e instanceof ImagerateDataError || !(e as NodeJS.ErrnoException)?.code
    ? e : new ImagerateDataError(file, fsProblem(e, 'cannot write', file)));
  let fh: FileHandle | null;
  try {
    fh = await open(tmp, 'w');
  } catch (e) {
    throw fsError(e);
  }
  const out = fh;
  try {
    await produce(async (chunk) => {
      let off = 0;
      while (off < chunk.length) {
        const { bytesWritten } = await out.write(chunk, off, chunk.length - off);
        off += bytesWritten;
      }
    });
    await out.sync();
    await out.close();
    fh = null;
    await rename(tmp, file);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
    throw fsError(e);
  }
  // Make the rename itself durable; not every file system lets a directory be fsynced.
  try {
    const dir = await open(dirname(file), 'r');
    await dir.sync().catch(() => undefined);
    await dir.close();
  } catch { /* best effort */ }
}

/**
 * Writes a safetensors file atomically. Tensors whose `data` is a function are fetched one at
 * a time as the writer reaches them, so a model's weights need not all be in host memory at once.
 */
export async function writeSafetensors(
  file: string, tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>, metadata: Record<string, string> = {},
): Promise<void> {
  const list = entriesOf(tensors);
  const header = encodeHeader(list, metadata); // checks names, dtypes and shapes before a file is opened
  await writeFileAtomic(file, async (write) => {
    await write(header);
    for (const [name, t] of list) {
      const values = typeof t.data === 'function' ? await t.data() : t.data;
      checkValues(name, t, values);
      await write(bytesOf(values));
    }
  });
}
