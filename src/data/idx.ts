// IDX reader for the real MNIST and Fashion-MNIST files (http://yann.lecun.com/exdb/mnist/).
//
// An IDX file is a big-endian header (magic 00 00 <dtype> <ndims>, then ndims u32 sizes)
// followed by the values. We accept only what image classification needs:
//   images: magic 0x00000803 (unsigned byte, 3-D: count x rows x cols)
//   labels: magic 0x00000801 (unsigned byte, 1-D: count)
// Files may be gzip-compressed (detected by the magic 1f 8b, not by the name). The header is
// decompressed first from a bounded prefix; the full decompression then runs with
// maxOutputLength = header + product(dims), so a hostile header or a zip bomb cannot make
// the reader allocate more than the header honestly describes (itself capped at
// MAX_IDX_BYTES and by the dimension limits below).
//
// Every problem is an ImagerateDataError whose message names the file and the problem.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gunzipSync, constants as zc } from 'node:zlib';
import { ImagerateDataError, normaliseBytes, type ImageDataset } from './dataset.js';
import { DIGIT_CLASS_NAMES, MNIST_MEAN, MNIST_STD } from './mnist-embedded.js';

export { ImagerateDataError } from './dataset.js';

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;
export const MAX_IDX_SIDE = 4096;
export const MAX_IDX_COUNT = 1e8;
/** Largest payload we will decompress or read: 2 GiB. */
export const MAX_IDX_BYTES = 2 ** 31;

export const FASHION_MNIST_MEAN = 0.2860;
export const FASHION_MNIST_STD = 0.3530;
export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
  'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

const DTYPES: Record<number, string> = {
  0x08: 'unsigned byte', 0x09: 'signed byte', 0x0b: 'int16', 0x0c: 'int32', 0x0d: 'float32', 0x0e: 'float64',
};

export type IdxKind = 'images' | 'labels';

export interface IdxImages { count: number; rows: number; cols: number; pixels: Uint8Array }

const hex = (v: number): string => '0x' + (v >>> 0).toString(16).padStart(8, '0');
const plural = (n: number, w: string): string => `${n} ${w}${n === 1 ? '' : 's'}`;

function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

interface Header { dims: number[]; headerBytes: number; payloadBytes: number }

/** Parse and validate the header from the first bytes of the (decompressed) file. */
function parseHeader(head: Uint8Array, file: string, kind: IdxKind, decompressedNote: string): Header {
  const fail = (p: string): never => { throw new ImagerateDataError(file, p); };
  if (head.length < 4) fail(`truncated: ${plural(head.length, 'byte')}${decompressedNote}, too short for an IDX header`);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const magic = view.getUint32(0);
  const want = kind === 'images' ? IDX_IMAGES_MAGIC : IDX_LABELS_MAGIC;
  const wantDesc = kind === 'images' ? `${hex(want)} (unsigned byte, 3-D images)` : `${hex(want)} (unsigned byte, 1-D labels)`;
  if (head[0] !== 0 || head[1] !== 0) {
    fail(`not an IDX file: magic is ${hex(magic)}, expected ${wantDesc}`);
  }
  const dtype = head[2];
  const ndims = head[3];
  if (dtype !== 0x08) {
    const name = DTYPES[dtype] ? `${DTYPES[dtype]} (0x${dtype.toString(16).padStart(2, '0')})` : `unknown code 0x${dtype.toString(16).padStart(2, '0')}`;
    fail(`IDX data type ${name} is not supported: only unsigned byte (0x08) ${kind} are (magic ${hex(magic)}, expected ${wantDesc})`);
  }
  const wantDims = kind === 'images' ? 3 : 1;
  if (ndims !== wantDims) {
    const other = ndims === 1 ? ' (this looks like a label file)' : ndims === 3 ? ' (this looks like an image file)' : '';
    fail(`expected ${kind}: ${wantDims}-D, magic ${wantDesc}, but the file is ${ndims}-D (magic ${hex(magic)})${other}`);
  }
  const headerBytes = 4 + 4 * ndims;
  if (head.length < headerBytes) {
    fail(`truncated: the header needs ${headerBytes} bytes but the file has ${head.length}${decompressedNote}`);
  }
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i));
  const [count] = dims;
  if (count === 0) fail(`header says 0 ${kind}`);
  if (count > MAX_IDX_COUNT) fail(`header says ${count} ${kind}, more than the limit of ${MAX_IDX_COUNT}`);
  if (kind === 'images') {
    const [, rows, cols] = dims;
    if (rows === 0 || cols === 0 || rows > MAX_IDX_SIDE || cols > MAX_IDX_SIDE) {
      fail(`header says images of ${rows}x${cols}; rows and columns must be in 1..${MAX_IDX_SIDE}`);
    }
  }
  const payloadBytes = dims.reduce((a, b) => a * b, 1);
  if (payloadBytes + headerBytes > MAX_IDX_BYTES) {
    fail(`header says ${dims.join('x')} (${payloadBytes} bytes), more than the limit of ${MAX_IDX_BYTES} bytes`);
  }
  return { dims, headerBytes, payloadBytes };
}

function describeDims(kind: IdxKind, h: Header): string {
  return kind === 'images'
    ? `header says ${h.dims.join('x')} (${h.payloadBytes} bytes of pixels)`
    : `header says ${plural(h.dims[0], 'label')} (${h.payloadBytes} bytes)`;
}

/**
 * Parse an IDX file already in memory (plain or gzip). `file` is used in error messages.
 * Returns the dims and the u8 payload (a view, not a copy).
 */
export function parseIdx(buf: Uint8Array, file: string, kind: IdxKind): { dims: number[]; data: Uint8Array } {
  if (!isGzip(buf)) {
    const h = parseHeader(buf, file, kind, '');
    const expected = h.headerBytes + h.payloadBytes;
    if (buf.length < expected) {
      throw new ImagerateDataError(file, `truncated: ${describeDims(kind, h)} but the file has ${buf.length - h.headerBytes} (${buf.length} bytes in all)`);
    }
    if (buf.length > expected) {
      throw new ImagerateDataError(file, `size mismatch: ${describeDims(kind, h)}, so the file should be ${expected} bytes, but it is ${buf.length} (${buf.length - expected} extra)`);
    }
    return { dims: h.dims, data: buf.subarray(h.headerBytes, expected) };
  }

  // gzip: decompress a bounded prefix to read the header. 4 KiB of deflate input expands
  // to at most ~4 MiB, and Z_SYNC_FLUSH lets a prefix (or a truncated file) decompress.
  let head: Uint8Array;
  try {
    head = gunzipSync(buf.subarray(0, Math.min(buf.length, 4096)), { finishFlush: zc.Z_SYNC_FLUSH });
  } catch (e) {
    throw new ImagerateDataError(file, `gzip data is corrupt: ${(e as Error).message}`);
  }
  const h = parseHeader(head, file, kind, ' after decompression');
  const expected = h.headerBytes + h.payloadBytes;
  let out: Uint8Array;
  try {
    out = gunzipSync(buf, { maxOutputLength: expected });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_BUFFER_TOO_LARGE') {
      throw new ImagerateDataError(file, `size mismatch: ${describeDims(kind, h)}, so the file should decompress to ${expected} bytes, but it decompresses to more`);
    }
    if (err.code !== 'Z_BUF_ERROR') throw new ImagerateDataError(file, `gzip data is corrupt: ${err.message}`);
    // The gzip stream ends early: decompress what there is, to say how much.
    try {
      out = gunzipSync(buf, { maxOutputLength: expected, finishFlush: zc.Z_SYNC_FLUSH });
    } catch {
      throw new ImagerateDataError(file, `truncated: the gzip stream ends early (${err.message})`);
    }
    if (out.length >= expected) {
      throw new ImagerateDataError(file, `truncated: the gzip stream ends early (${err.message}); the data is complete but its checksum is missing`);
    }
  }
  if (out.length < expected) {
    throw new ImagerateDataError(file, `truncated: ${describeDims(kind, h)} but the file has ${Math.max(0, out.length - h.headerBytes)} (${out.length} bytes after decompression)`);
  }
  return { dims: h.dims, data: out.subarray(h.headerBytes, expected) };
}

function readWhole(file: string): Uint8Array {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new ImagerateDataError(file, 'is not a regular file');
    size = st.size;
  } catch (e) {
    if (e instanceof ImagerateDataError) throw e;
    throw new ImagerateDataError(file, `cannot read: ${(e as Error).message}`);
  }
  if (size > MAX_IDX_BYTES) throw new ImagerateDataError(file, `file is ${size} bytes, more than the limit of ${MAX_IDX_BYTES}`);
  return readFileSync(file);
}

/** Read an IDX3 u8 image file (plain or gzip). */
export function readIdxImages(file: string): IdxImages {
  const { dims, data } = parseIdx(readWhole(file), file, 'images');
  return { count: dims[0], rows: dims[1], cols: dims[2], pixels: data };
}

/** Read an IDX1 u8 label file (plain or gzip); every label must be < numClasses. */
export function readIdxLabels(file: string, numClasses = 10): Uint8Array {
  const { data } = parseIdx(readWhole(file), file, 'labels');
  for (let i = 0; i < data.length; i++) {
    if (data[i] >= numClasses) {
      throw new ImagerateDataError(file, `label ${data[i]} at index ${i} is not a valid class (expected 0..${numClasses - 1})`);
    }
  }
  return data;
}

export type IdxSplit = 'train' | 'test';

/** The standard file names: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. */
export function idxFileNames(split: IdxSplit): { images: string; labels: string } {
  const p = split === 'train' ? 'train' : 't10k';
  return { images: `${p}-images-idx3-ubyte`, labels: `${p}-labels-idx1-ubyte` };
}

/**
 * Find the images and labels files of `split` in `dir`, preferring the plain file over `.gz`.
 * Also accepts the `foo.idx3-ubyte` spelling some mirrors use.
 */
export function findIdxFiles(dir: string, split: IdxSplit): { images: string; labels: string } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ImagerateDataError(dir, 'directory not found', dir);
  }
  const names = idxFileNames(split);
  const present = new Set(readdirSync(dir));
  const pick = (base: string): string | null => {
    const alt = base.replace(/-(idx[13])-ubyte$/, '.$1-ubyte');
    for (const cand of [base, `${base}.gz`, alt, `${alt}.gz`]) if (present.has(cand)) return join(dir, cand);
    return null;
  };
  const images = pick(names.images);
  const labels = pick(names.labels);
  if (!images || !labels) {
    const missing = [images ? null : names.images, labels ? null : names.labels].filter(Boolean).map((m) => `${m}[.gz]`);
    const idxHere = [...present].filter((f) => /ubyte/.test(f)).sort();
    throw new ImagerateDataError(dir,
      `no ${split} split: missing ${missing.join(' and ')}` +
      (idxHere.length ? ` (IDX files present: ${idxHere.join(', ')})` : ' (no IDX files present)'), dir);
  }
  return { images, labels };
}

export interface IdxDatasetOptions {
  split: IdxSplit;
  /** Dataset name; default the directory's base name. A name containing "fashion" selects Fashion-MNIST's classes and normalisation. */
  name?: string;
  classNames?: string[];
  normalisation?: { mean: number; std: number };
}

/** Is this name Fashion-MNIST (by its name)? */
export function isFashionName(name: string): boolean {
  return /fashion/i.test(name);
}

/** Load one split of an MNIST-format directory as a normalised 1xHxW ImageDataset. */
export function loadIdxDataset(dir: string, opts: IdxDatasetOptions): ImageDataset {
  const name = opts.name ?? basename(dir.replace(/[/\\]+$/, ''));
  const fashion = isFashionName(name);
  const classNames = opts.classNames ?? [...(fashion ? FASHION_MNIST_CLASSES : DIGIT_CLASS_NAMES)];
  const norm = opts.normalisation ??
    (fashion ? { mean: FASHION_MNIST_MEAN, std: FASHION_MNIST_STD } : { mean: MNIST_MEAN, std: MNIST_STD });
  const files = findIdxFiles(dir, opts.split);
  const img = readIdxImages(files.images);
  const lab = readIdxLabels(files.labels, classNames.length);
  if (lab.length !== img.count) {
    throw new ImagerateDataError(files.labels,
      `count mismatch: ${plural(lab.length, 'label')} but ${basename(files.images)} has ${plural(img.count, 'image')}`);
  }
  return {
    name,
    images: normaliseBytes(img.pixels, norm.mean, norm.std),
    labels: Int32Array.from(lab),
    n: img.count,
    c: 1,
    h: img.rows,
    w: img.cols,
    numClasses: classNames.length,
    classNames,
    normalisation: { mean: [norm.mean], std: [norm.std] },
    split: opts.split,
    source: `${files.images}, ${files.labels}`,
  };
}
