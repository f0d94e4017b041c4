// CIFAR-10 binary release reader (https://www.cs.toronto.edu/~kriz/cifar.html, the
// "binary version", cifar-10-binary.tar.gz -> cifar-10-batches-bin/):
//
//   data_batch_1.bin .. data_batch_5.bin   training, 10,000 records each
//   test_batch.bin                         test, 10,000 records
//   batches.meta.txt                       the 10 class names, one a line (optional here)
//
// A record is 3073 bytes: 1 label byte (0-9), then 3072 pixel bytes: the 1024 red values of
// the 32x32 image row by row, then the 1024 green, then the 1024 blue. That is CHW, so the
// records' pixels are kept as they are: one Uint8Array of n*3072 bytes (150 MB for the
// 50,000 training images); there is never a float copy of the whole set. The stage-2
// transforms (transforms.ts) turn the bytes of one batch into normalised floats.
//
// Every problem is an ImagerateDataError naming the file.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ImagerateDataError } from './dataset.js';

export const CIFAR_RECORD_BYTES = 3073;
export const CIFAR_IMAGE_BYTES = 3072;
export const CIFAR10_TRAIN_FILES: readonly string[] = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
export const CIFAR10_TEST_FILES: readonly string[] = ['test_batch.bin'];
export const CIFAR10_CLASSES: readonly string[] = [
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
];

/** CIFAR-10 images as they are on disk: n images of 3x32x32 uint8, CHW. */
export interface CifarBinaryData {
  name: string;
  /** n * 3072 bytes; image i is pixels[i*3072 .. (i+1)*3072), R plane then G then B. */
  pixels: Uint8Array;
  labels: Int32Array;
  n: number;
  classNames: string[];
  /** The files read, in order. */
  files: string[];
  split: 'train' | 'test';
}

function fileSize(file: string): number {
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new ImagerateDataError(file, 'is not a file');
    return st.size;
  } catch (e) {
    if (e instanceof ImagerateDataError) throw e;
    throw new ImagerateDataError(file, `cannot read: ${(e as Error).message}`);
  }
}

/** Check the size of a CIFAR-10 binary file; returns its record count. */
export function cifarRecordCount(file: string, size = fileSize(file)): number {
  if (size === 0) throw new ImagerateDataError(file, 'is empty (expected records of 3073 bytes: 1 label byte + 3072 pixel bytes)');
  const rem = size % CIFAR_RECORD_BYTES;
  if (rem !== 0) {
    throw new ImagerateDataError(file,
      `truncated or not a CIFAR-10 binary file: ${size} bytes is not a multiple of ${CIFAR_RECORD_BYTES} ` +
      `(1 label byte + 3072 pixel bytes per record); ${Math.floor(size / CIFAR_RECORD_BYTES)} whole records ` +
      `and ${rem} bytes left over` + (size % 3074 === 0 ? ' (3074-byte records would be CIFAR-100, which is not supported)' : ''));
  }
  return size / CIFAR_RECORD_BYTES;
}

/**
 * Read one CIFAR-10 binary file into `pixels`/`labels` at record offset `at` (or fresh arrays).
 * Returns the number of records.
 */
export function readCifarBinaryFile(
  file: string,
  into?: { pixels: Uint8Array; labels: Int32Array; at: number },
): { pixels: Uint8Array; labels: Int32Array; n: number } {
  const n = cifarRecordCount(file);
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw new ImagerateDataError(file, `cannot read: ${(e as Error).message}`);
  }
  if (buf.length !== n * CIFAR_RECORD_BYTES) cifarRecordCount(file, buf.length); // changed under us
  const pixels = into?.pixels ?? new Uint8Array(n * CIFAR_IMAGE_BYTES);
  const labels = into?.labels ?? new Int32Array(n);
  const at = into?.at ?? 0;
  if (at + n > labels.length) throw new ImagerateDataError(file, `holds ${n} records, more than the ${labels.length - at} expected`);
  for (let i = 0; i < n; i++) {
    const r = i * CIFAR_RECORD_BYTES;
    const label = buf[r];
    if (label >= 10) {
      throw new ImagerateDataError(file,
        `record ${i} (byte ${r}) has label ${label}; CIFAR-10 labels are 0-9 (is this the CIFAR-10 binary release?)`);
    }
    labels[at + i] = label;
    pixels.set(buf.subarray(r + 1, r + CIFAR_RECORD_BYTES), (at + i) * CIFAR_IMAGE_BYTES);
  }
  return { pixels, labels, n };
}

/** The class names from batches.meta.txt in `dir` when present, else the standard ten. */
export function readCifarClassNames(dir: string): string[] {
  const meta = join(dir, 'batches.meta.txt');
  if (!existsSync(meta)) return [...CIFAR10_CLASSES];
  const names = readFileSync(meta, 'utf8').split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length !== 10) {
    throw new ImagerateDataError(meta, `has ${names.length} class names, expected 10 (one a line)`);
  }
  if (new Set(names).size !== 10) throw new ImagerateDataError(meta, 'repeats a class name');
  return names;
}

/**
 * The directory that holds the CIFAR-10 batches: `dir` itself, or `dir/cifar-10-batches-bin`
 * (what the download's tarball unpacks to). Throws naming what is missing.
 */
export function findCifarBinaryDir(dir: string): string {
  const has = (d: string) => existsSync(join(d, CIFAR10_TEST_FILES[0])) || existsSync(join(d, CIFAR10_TRAIN_FILES[0]));
  if (has(dir)) return dir;
  const sub = join(dir, 'cifar-10-batches-bin');
  if (has(sub)) return sub;
  if (!existsSync(dir)) throw new ImagerateDataError(dir, 'directory not found', dir);
  throw new ImagerateDataError(dir,
    `no CIFAR-10 binary batches here or in cifar-10-batches-bin/ (expected ${CIFAR10_TRAIN_FILES.join(', ')} ` +
    `and ${CIFAR10_TEST_FILES[0]}, from cifar-10-binary.tar.gz)`, dir);
}

/** Load the train (50,000) or test (10,000) split of a CIFAR-10 binary directory, as uint8. */
export function loadCifar10Binary(dir: string, split: 'train' | 'test'): CifarBinaryData {
  if (split !== 'train' && split !== 'test') throw new Error(`CIFAR-10: unknown split '${String(split)}' (use train or test)`);
  const root = findCifarBinaryDir(dir);
  const names = split === 'train' ? CIFAR10_TRAIN_FILES : CIFAR10_TEST_FILES;
  const files = names.map((f) => join(root, f));
  const missing = names.filter((_, i) => !existsSync(files[i]));
  if (missing.length > 0) {
    throw new ImagerateDataError(root, `CIFAR-10 ${split} split is incomplete: missing ${missing.join(', ')}`, root);
  }
  const counts = files.map((f) => cifarRecordCount(f));
  const n = counts.reduce((a, b) => a + b, 0);
  const pixels = new Uint8Array(n * CIFAR_IMAGE_BYTES);
  const labels = new Int32Array(n);
  let at = 0;
  files.forEach((f, k) => {
    readCifarBinaryFile(f, { pixels, labels, at });
    at += counts[k];
  });
  return { name: 'cifar10', pixels, labels, n, classNames: readCifarClassNames(root), files, split };
}
