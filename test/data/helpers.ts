// Helpers for the data tests: temp dirs, IDX file writers, tiny synthetic datasets.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { ImageDataset } from '../../src/data/dataset.js';

export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SHARED_MNIST = join(PROJECT_ROOT, '..', 'shared', 'datasets', 'mnist');

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'imagerate-data-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** An IDX file: magic 00 00 <dtype> <dims.length>, big-endian dims, then `payload`. */
export function idxBytes(dims: number[], payload: Uint8Array, dtype = 0x08): Uint8Array {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = dtype;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, payload]);
}

export function writeFile(dir: string, name: string, bytes: Uint8Array, gzip = false): string {
  const p = join(dir, name);
  writeFileSync(p, gzip ? gzipSync(bytes) : bytes);
  return p;
}

/** A synthetic 1xHxW dataset whose image i is filled with the value i (and label i % classes). */
export function synthetic(n: number, h = 2, w = 3, numClasses = 10, c = 1): ImageDataset {
  const sz = c * h * w;
  const images = new Float32Array(n * sz);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    images.fill(i, i * sz, (i + 1) * sz);
    labels[i] = i % numClasses;
  }
  return {
    name: 'synthetic', images, labels, n, c, h, w, numClasses,
    classNames: Array.from({ length: numClasses }, (_, k) => `c${k}`),
    normalisation: { mean: new Array(c).fill(0.5), std: new Array(c).fill(0.25) },
  };
}

/** Byte-for-byte equality of two typed arrays (fast; expect().toEqual is slow on millions of floats). */
export function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.byteLength === b.byteLength &&
    Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}
