// ImageFolder: the torchvision / ImageNet layout, one sub-directory per class.
//
//   root/<class>/**/<name>.{jpg,jpeg,png}     (extensions matched case-insensitively)
//
// Classes are the sub-directories of root sorted by code unit (Python's sorted(), as
// torchvision does), and their positions are the label indices. Files are found
// recursively under each class directory and sorted by path; other files (and hidden
// directories' contents are not special) are ignored. A class directory with no images is an
// error, as in torchvision, since silently shifting the label indices would be worse.
//
// Decoding is elsewhere (decode.ts, on worker threads). This module only lists files, and
// extracts the CIFAR-10 JPEG archive of ../shared/datasets.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { ImagerateDataError } from './dataset.js';

export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png'];

export interface ImageFolderIndex {
  root: string;
  classNames: string[];
  /** Absolute paths, grouped by class, sorted within it. */
  files: string[];
  /** labels[i] is the class index of files[i]. */
  labels: Int32Array;
}

function isImageName(name: string): boolean {
  const l = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => l.endsWith(e));
}

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function walk(dir: string, out: string[]): void {
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => byCodeUnit(a.name, b.name));
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if ((e.isFile() || e.isSymbolicLink()) && isImageName(e.name)) out.push(p);
  }
}

/** List an ImageFolder tree. Throws ImagerateDataError naming the root (or the empty classes). */
export function scanImageFolder(root: string): ImageFolderIndex {
  const abs = resolve(root);
  let st;
  try {
    st = statSync(abs);
  } catch {
    throw new ImagerateDataError(abs, 'directory not found', root);
  }
  if (!st.isDirectory()) throw new ImagerateDataError(abs, 'is not a directory (an ImageFolder is root/<class>/*.jpg)', root);
  const classNames = readdirSync(abs, { withFileTypes: true })
    .filter((e) => e.isDirectory() || (e.isSymbolicLink() && statSync(join(abs, e.name)).isDirectory()))
    .map((e) => e.name)
    .sort(byCodeUnit);
  if (classNames.length === 0) {
    throw new ImagerateDataError(abs, 'has no class sub-directories (expected root/<class>/*.jpg|jpeg|png, e.g. train/n01440764/x.JPEG)', root);
  }
  const files: string[] = [];
  const labels: number[] = [];
  const empty: string[] = [];
  classNames.forEach((c, k) => {
    const list: string[] = [];
    walk(join(abs, c), list);
    if (list.length === 0) empty.push(c);
    for (const f of list) {
      files.push(f);
      labels.push(k);
    }
  });
  if (empty.length > 0) {
    const shown = empty.slice(0, 5).join(', ') + (empty.length > 5 ? `, ... (${empty.length} in all)` : '');
    throw new ImagerateDataError(abs,
      `class director${empty.length === 1 ? 'y' : 'ies'} with no .jpg/.jpeg/.png files: ${shown}`, root);
  }
  return { root: abs, classNames, files, labels: Int32Array.from(labels) };
}

/** Whether `dir` looks like an ImageFolder root (has a sub-directory holding an image). */
export function looksLikeImageFolder(dir: string): boolean {
  try {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      if (readdirSync(join(dir, e.name)).some(isImageName)) return true;
    }
  } catch { /* not a directory */ }
  return false;
}

/** A short relative name of a file for messages (relative to root when inside it). */
export function displayName(file: string, root?: string): string {
  if (!root) return file;
  const r = relative(root, file);
  return r.startsWith('..') ? file : r;
}

// ---------------------------------------------------------------------------------------
// The CIFAR-10 JPEG archive of ../shared/datasets

const MARKER = '.imagerate-extracted.json';

export interface ExtractResult {
  /** destDir/cifar10: the ImageFolder root holding train/ and test/. */
  root: string;
  /** False when a complete earlier extraction was reused. */
  extracted: boolean;
  seconds: number;
}

/**
 * Extract cifar10-jpg.tar.gz (an ImageFolder tree cifar10/{train,test}/<class>/*.jpg) into
 * destDir with the npm `tar` package. Idempotent: a marker file written after a complete
 * extraction records the archive's size and mtime, and a later call with the same archive
 * returns at once. An interrupted extraction leaves no marker and is redone.
 */
export async function extractCifarJpeg(tarGz: string, destDir: string): Promise<ExtractResult> {
  const t0 = performance.now();
  let st;
  try {
    st = statSync(tarGz);
  } catch {
    throw new ImagerateDataError(tarGz, 'archive not found');
  }
  const key = { archive: resolve(tarGz), size: st.size, mtimeMs: Math.round(st.mtimeMs) };
  const root = join(destDir, 'cifar10');
  const marker = join(destDir, MARKER);
  if (existsSync(marker) && existsSync(join(root, 'train')) && existsSync(join(root, 'test'))) {
    try {
      const m = JSON.parse(readFileSync(marker, 'utf8')) as typeof key;
      if (m.size === key.size && m.mtimeMs === key.mtimeMs) {
        return { root, extracted: false, seconds: (performance.now() - t0) / 1000 };
      }
    } catch { /* unreadable marker: extract again */ }
  }
  mkdirSync(destDir, { recursive: true });
  const tar = await import('tar');
  // (strict: true made node-tar 7 hang on this archive here; warnings are collected instead.)
  const warnings: string[] = [];
  try {
    await tar.x({ file: tarGz, cwd: destDir, onwarn: (code: string, message: string) => { warnings.push(`${code}: ${message}`); } });
  } catch (e) {
    throw new ImagerateDataError(tarGz, `cannot extract into ${destDir}: ${(e as Error).message}`);
  }
  if (warnings.length > 0) {
    throw new ImagerateDataError(tarGz, `extraction into ${destDir} reported ${warnings.length} problem(s), e.g. ${warnings[0]}`);
  }
  if (!existsSync(join(root, 'train')) || !existsSync(join(root, 'test'))) {
    throw new ImagerateDataError(tarGz, 'does not hold cifar10/train and cifar10/test');
  }
  const tmp = `${marker}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(key));
  renameSync(tmp, marker);
  return { root, extracted: true, seconds: (performance.now() - t0) / 1000 };
}
