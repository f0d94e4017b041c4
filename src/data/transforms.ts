// Stage-2 transforms (the "input pipeline" of MLPerf's two data stages): uint8 pixels of one
// decoded image in, normalised float32 CHW out, written straight into a batch buffer.
//
//   cifar-crop32  train: pad 4 px of black on each side, random 32x32 crop, horizontal flip
//                 (p = 0.5); eval: none. Normalised with the CIFAR-10 mean/std.
//   cifar-crop24  (the TensorFlow cifar10 tutorial) train: random 24x24 crop of the 32x32
//                 image + flip; eval: centre 24x24 crop. Optional, off by default: random
//                 brightness (+-delta on the 0..255 scale; the tutorial uses 63) and random
//                 contrast (factor uniform in [lo, hi]; the tutorial uses [0.2, 1.8]), applied
//                 in that order before normalisation. The tutorial then standardises each
//                 image by its own mean/std; we keep the dataset mean/std for every transform.
//   imagenet      train: RandomResizedCrop(S, scale (0.08, 1), ratio (3/4, 4/3)) + flip;
//                 eval: resize the shorter side to round(S * 256 / 224) then centre crop S
//                 (S = inputSize, default 224). Normalised with the ImageNet mean/std.
//   mnist         1 channel, 28x28, no augmentation; eval = train. MNIST mean/std.
//
// The cifar transforms expect 32x32 images; anything else is first brought to 32x32 by
// resizing the shorter side to 32 and taking the centre (sharp does this in the decode
// workers for image files; renderImage() does it for records of another size).
//
// Resampling: one pass, from the crop box straight to the output size, with PIL's separable
// triangle ("bilinear") filter including its antialiasing (the filter widens by the scale
// factor when shrinking), so it matches torchvision's resized_crop on PIL images closely.
// A box of exactly the output size (every CIFAR crop, and ImageNet eval on images packed at
// shorter side 256) takes a copy path with a 256-entry lookup table per channel instead.
// The eval "resize to 256 then centre crop 224" is done as one resample of the
// corresponding box of the source image, which is the same computation for a bilinear
// filter and half the work.
//
// Randomness: sampleParams() draws everything from the Rng passed in, in a fixed order per
// image. The sources give each image its own Rng (seeded from (seed, epoch) and the image's
// position in the epoch), so the result does not depend on which worker renders it.
import type { Rng } from '../util/rng.js';
import type { Normalisation } from './dataset.js';
import { MNIST_MEAN, MNIST_STD } from './mnist-embedded.js';

export type TransformName = 'cifar-crop32' | 'cifar-crop24' | 'imagenet' | 'mnist';
export const TRANSFORM_NAMES: readonly TransformName[] = ['cifar-crop32', 'cifar-crop24', 'imagenet', 'mnist'];

export const CIFAR10_MEAN: readonly number[] = [0.4914, 0.4822, 0.4465];
export const CIFAR10_STD: readonly number[] = [0.2470, 0.2435, 0.2616];
export const IMAGENET_MEAN: readonly number[] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly number[] = [0.229, 0.224, 0.225];

/** Anything with uniform() in [0,1): an Rng, or a test double. */
export type Uniform = Pick<Rng, 'uniform'>;

/** The normalisation a transform uses by default. */
export function defaultNormalisation(name: TransformName): Normalisation {
  switch (name) {
    case 'cifar-crop32':
    case 'cifar-crop24':
      return { mean: [...CIFAR10_MEAN], std: [...CIFAR10_STD] };
    case 'imagenet':
      return { mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] };
    case 'mnist':
      return { mean: [MNIST_MEAN], std: [MNIST_STD] };
  }
}

/** Everything a transform needs; plain data, so it can be posted to a worker. */
export interface TransformConfig {
  name: TransformName;
  /** Training (random) or evaluation (deterministic) variant. */
  train: boolean;
  /** imagenet: output side S (default 224). mnist: output side (default 28). */
  inputSize?: number;
  /** Default: defaultNormalisation(name). */
  normalisation?: Normalisation;
  /** Horizontal flip probability in training (default 0.5; mnist 0). */
  flip?: number;
  /** cifar-crop32: padding (default 4). */
  padding?: number;
  /** cifar-crop24 (or any): random brightness, max delta on the 0..255 scale (default 0 = off). */
  brightness?: number;
  /** cifar-crop24 (or any): random contrast factor range (default off). */
  contrast?: [number, number] | null;
  /** imagenet: RandomResizedCrop scale range (default [0.08, 1]). */
  scale?: [number, number];
  /** imagenet: RandomResizedCrop aspect-ratio range (default [3/4, 4/3]). */
  ratio?: [number, number];
}

/** What the decoder should hand a transform, for image files (sharp does it in the workers). */
export type DecodeResize =
  | { mode: 'shorter'; size: number } // shorter side to size, aspect kept
  | { mode: 'exact'; width: number; height: number } // exactly width x height, aspect not kept
  | { mode: 'cover'; width: number; height: number }; // shorter side to fit, then centre crop

export interface DecodeSpec {
  channels: 1 | 3;
  resize?: DecodeResize | null;
}

/** A crop box in source pixels (may extend past the image for padded crops), and a flip. */
export interface CropParams {
  x: number;
  y: number;
  w: number;
  h: number;
  flip: boolean;
  /** Added to every pixel (0..255 scale) before contrast; 0 = none. */
  brightness: number;
  /** Contrast factor around the per-channel mean of the crop; 1 = none. */
  contrast: number;
}

/** Pixel layout of a uint8 source image. HWC is what decoders and pack records hold; CHW is CIFAR binary. */
export type Layout = 'hwc' | 'chw';

export interface SourceImage {
  data: Uint8Array;
  h: number;
  w: number;
  c: number;
  layout: Layout;
}

export interface ResolvedTransform {
  readonly config: TransformConfig;
  readonly name: TransformName;
  readonly train: boolean;
  /** Output [C, H, W]. */
  readonly shape: readonly [number, number, number];
  readonly normalisation: Normalisation;
  /** For reports, e.g. "random crop 32 (4 px padding), horizontal flip, normalised (CIFAR-10 mean/std)". */
  readonly description: string;
  /** How image files should be decoded for this transform. */
  readonly decode: DecodeSpec;
  /** Floats per output image. */
  readonly size: number;
}

function checkRange(what: string, r: [number, number], min: number): void {
  if (!(r.length === 2 && r[0] >= min && r[1] >= r[0] && Number.isFinite(r[1]))) {
    throw new RangeError(`transform: ${what} must be [lo, hi] with ${min} <= lo <= hi, got [${r.join(', ')}]`);
  }
}

/** Validate a TransformConfig and work out its shape, normalisation and decode spec. */
export function resolveTransform(config: TransformConfig): ResolvedTransform {
  const { name, train } = config;
  if (!TRANSFORM_NAMES.includes(name)) {
    throw new RangeError(`unknown transform '${String(name)}' (valid: ${TRANSFORM_NAMES.join(', ')})`);
  }
  const norm = config.normalisation ?? defaultNormalisation(name);
  const c = name === 'mnist' ? 1 : 3;
  if (norm.mean.length !== c || norm.std.length !== c) {
    throw new RangeError(`transform ${name}: normalisation has ${norm.mean.length} means and ${norm.std.length} stds for ${c} channels`);
  }
  let side: number;
  if (name === 'cifar-crop32') side = 32;
  else if (name === 'cifar-crop24') side = 24;
  else side = config.inputSize ?? (name === 'imagenet' ? 224 : 28);
  if (!Number.isInteger(side) || side < 1 || side > 4096) throw new RangeError(`transform ${name}: input size must be an integer in [1, 4096], got ${side}`);
  const flip = config.flip ?? (name === 'mnist' ? 0 : 0.5);
  if (!(flip >= 0 && flip <= 1)) throw new RangeError(`transform ${name}: flip probability must be in [0,1], got ${flip}`);
  const pad = config.padding ?? 4;
  if (!Number.isInteger(pad) || pad < 0) throw new RangeError(`transform ${name}: padding must be an integer >= 0, got ${pad}`);
  if (config.scale) checkRange('scale', config.scale, 0);
  if (config.ratio) checkRange('ratio', config.ratio, 1e-6);
  if (config.contrast) checkRange('contrast', config.contrast, 0);
  const bright = config.brightness ?? 0;
  if (!(bright >= 0 && bright <= 255)) throw new RangeError(`transform ${name}: brightness delta must be in [0, 255], got ${bright}`);

  const parts: string[] = [];
  const normName = name === 'imagenet' ? 'ImageNet' : name === 'mnist' ? 'MNIST' : 'CIFAR-10';
  let decode: DecodeSpec;
  switch (name) {
    case 'cifar-crop32':
      if (train && pad > 0) parts.push(`random crop 32 (${pad} px padding)`);
      decode = { channels: 3, resize: { mode: 'cover', width: 32, height: 32 } };
      break;
    case 'cifar-crop24':
      parts.push(train ? 'random crop 24 of 32' : 'centre crop 24 of 32');
      decode = { channels: 3, resize: { mode: 'cover', width: 32, height: 32 } };
      break;
    case 'imagenet': {
      const s = config.scale ?? [0.08, 1];
      const r = config.ratio ?? [3 / 4, 4 / 3];
      if (train) parts.push(`RandomResizedCrop ${side} (scale ${s[0]}-${s[1]}, ratio ${+r[0].toFixed(3)}-${+r[1].toFixed(3)})`);
      else parts.push(`resize shorter side to ${evalResizeSide(side)}, centre crop ${side}`);
      decode = { channels: 3, resize: { mode: 'shorter', size: evalResizeSide(side) } };
      break;
    }
    case 'mnist':
      parts.push(`greyscale ${side}x${side}`);
      decode = { channels: 1, resize: { mode: 'cover', width: side, height: side } };
      break;
  }
  if (train && flip > 0) parts.push(flip === 0.5 ? 'horizontal flip' : `horizontal flip (p ${flip})`);
  if (train && bright > 0) parts.push(`random brightness +-${bright}`);
  if (train && config.contrast) parts.push(`random contrast ${config.contrast[0]}-${config.contrast[1]}`);
  parts.push(config.normalisation ? 'normalised (given mean/std)' : `normalised (${normName} mean/std)`);
  return {
    config: { ...config, normalisation: norm },
    name,
    train,
    shape: [c, side, side],
    normalisation: norm,
    description: parts.join(', '),
    decode,
    size: c * side * side,
  };
}

/** The resize side of ImageNet evaluation for output side S: 256 for 224. */
export function evalResizeSide(side: number): number {
  return Math.round((side * 256) / 224);
}

/** torchvision's RandomResizedCrop.get_params on an h x w image. Returns an integer box inside the image. */
export function randomResizedCropBox(
  h: number, w: number, rng: Uniform,
  scale: [number, number] = [0.08, 1], ratio: [number, number] = [3 / 4, 4 / 3],
): { x: number; y: number; w: number; h: number } {
  const area = h * w;
  const logR0 = Math.log(ratio[0]);
  const logR1 = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * (scale[0] + rng.uniform() * (scale[1] - scale[0]));
    const aspect = Math.exp(logR0 + rng.uniform() * (logR1 - logR0));
    const cw = Math.round(Math.sqrt(target * aspect));
    const ch = Math.round(Math.sqrt(target / aspect));
    if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
      const y = Math.floor(rng.uniform() * (h - ch + 1));
      const x = Math.floor(rng.uniform() * (w - cw + 1));
      return { x, y, w: cw, h: ch };
    }
  }
  // Fallback: centre crop with the ratio clamped into range.
  const inRatio = w / h;
  let cw: number;
  let ch: number;
  if (inRatio < ratio[0]) {
    cw = w;
    ch = Math.min(h, Math.round(cw / ratio[0]));
  } else if (inRatio > ratio[1]) {
    ch = h;
    cw = Math.min(w, Math.round(ch * ratio[1]));
  } else {
    cw = w;
    ch = h;
  }
  return { x: Math.floor((w - cw) / 2), y: Math.floor((h - ch) / 2), w: cw, h: ch };
}

/** The largest centred square of an h x w image (what "resize shorter side, centre crop" keeps). */
function centreSquare(h: number, w: number): { x: number; y: number; w: number; h: number } {
  const s = Math.min(h, w);
  return { x: Math.floor((w - s) / 2), y: Math.floor((h - s) / 2), w: s, h: s };
}

/**
 * The source box that "resize the shorter side to R, then centre crop S" keeps, in source
 * pixels (torchvision's arithmetic: resized long side int(R * long / short), crop offset
 * round((resized - S) / 2)).
 */
export function resizeCentreCropBox(h: number, w: number, resizeSide: number, side: number): { x: number; y: number; w: number; h: number } {
  const short = Math.min(h, w);
  const s = resizeSide / short;
  const rh = h <= w ? resizeSide : Math.floor((resizeSide * h) / w);
  const rw = w <= h ? resizeSide : Math.floor((resizeSide * w) / h);
  const top = Math.round((rh - side) / 2);
  const left = Math.round((rw - side) / 2);
  if (s === 1) return { x: left, y: top, w: side, h: side };
  return { x: left / s, y: top / s, w: side / s, h: side / s };
}

/**
 * Draw the random parameters for one image of size h x w (the size it has when it reaches
 * the transform). Deterministic for eval transforms (no draws). Draw order per image:
 * crop (2 or more), flip, brightness, contrast.
 */
export function sampleParams(t: ResolvedTransform, h: number, w: number, rng: Uniform | null): CropParams {
  const c = t.config;
  const [, oh, ow] = t.shape;
  let box: { x: number; y: number; w: number; h: number };
  const train = t.train && rng !== null;
  switch (t.name) {
    case 'cifar-crop32': {
      // On a 32x32 image; other sizes are brought to 32x32 first (see renderImage).
      const p = c.padding ?? 4;
      if (train && p > 0) {
        const ox = Math.floor(rng!.uniform() * (2 * p + 1));
        const oy = Math.floor(rng!.uniform() * (2 * p + 1));
        box = { x: ox - p, y: oy - p, w: 32, h: 32 };
      } else box = { x: 0, y: 0, w: 32, h: 32 };
      break;
    }
    case 'cifar-crop24':
      if (train) {
        const ox = Math.floor(rng!.uniform() * 9);
        const oy = Math.floor(rng!.uniform() * 9);
        box = { x: ox, y: oy, w: 24, h: 24 };
      } else box = { x: 4, y: 4, w: 24, h: 24 };
      break;
    case 'imagenet':
      box = train ? randomResizedCropBox(h, w, rng!, c.scale, c.ratio) : resizeCentreCropBox(h, w, evalResizeSide(oh), oh);
      break;
    case 'mnist':
      box = h === oh && w === ow ? { x: 0, y: 0, w, h } : centreSquare(h, w);
      break;
  }
  const flipP = c.flip ?? (t.name === 'mnist' ? 0 : 0.5);
  const flip = train && flipP > 0 ? rng!.uniform() < flipP : false;
  const bmax = c.brightness ?? 0;
  const brightness = train && bmax > 0 ? (rng!.uniform() * 2 - 1) * bmax : 0;
  const contrast = train && c.contrast ? c.contrast[0] + rng!.uniform() * (c.contrast[1] - c.contrast[0]) : 1;
  return { ...box, flip, brightness, contrast };
}

// ---------------------------------------------------------------------------------------
// Rendering

/** Per-channel lookup tables v (0..255) -> (v/255 - mean)/std, cached per normalisation. */
const lutCache = new WeakMap<Normalisation, Float32Array[]>();
function luts(norm: Normalisation): Float32Array[] {
  let l = lutCache.get(norm);
  if (!l) {
    l = norm.mean.map((m, ch) => {
      const t = new Float32Array(256);
      for (let v = 0; v < 256; v++) t[v] = (v / 255 - m) / norm.std[ch];
      return t;
    });
    lutCache.set(norm, l);
  }
  return l;
}

/** Convert a source image to `c` channels (1 -> 3 replicates; 3 -> 1 is ITU-R 601 luma). */
function toChannels(src: SourceImage, c: number): SourceImage {
  if (src.c === c) return src;
  const n = src.h * src.w;
  const out = new Uint8Array(n * c);
  const at = (p: number, ch: number): number => (src.layout === 'hwc' ? src.data[p * src.c + ch] : src.data[ch * n + p]);
  if (c === 1) {
    for (let p = 0; p < n; p++) out[p] = Math.round(0.299 * at(p, 0) + 0.587 * at(p, Math.min(1, src.c - 1)) + 0.114 * at(p, Math.min(2, src.c - 1)));
  } else {
    for (let p = 0; p < n; p++) for (let ch = 0; ch < c; ch++) out[p * c + ch] = at(p, Math.min(ch, src.c - 1));
  }
  return { data: out, h: src.h, w: src.w, c, layout: c === 1 ? 'chw' : 'hwc' };
}

// Per-thread scratch buffers for resampling (grown as needed, never shrunk).
const scratchBufs: Float32Array[] = [new Float32Array(0), new Float32Array(0)];
function scratch(k: number, n: number): Float32Array {
  if (scratchBufs[k].length < n) scratchBufs[k] = new Float32Array(Math.max(n, scratchBufs[k].length * 2));
  return scratchBufs[k].subarray(0, n);
}

interface Taps { start: Int32Array; count: Int32Array; weights: Float32Array; maxTaps: number }

/** PIL's precompute_coeffs for the bilinear (triangle) filter over [in0, in0 + inLen) -> outLen, clamped to [0, size). */
function taps(in0: number, inLen: number, outLen: number, size: number): Taps {
  const scale = inLen / outLen;
  const fscale = Math.max(scale, 1);
  const support = fscale; // triangle support 1, widened when shrinking (antialias)
  const maxTaps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outLen);
  const count = new Int32Array(outLen);
  const weights = new Float32Array(outLen * maxTaps);
  for (let o = 0; o < outLen; o++) {
    const centre = in0 + (o + 0.5) * scale;
    let lo = Math.trunc(centre - support + 0.5);
    if (lo < 0) lo = 0;
    let hi = Math.trunc(centre + support + 0.5);
    if (hi > size) hi = size;
    if (hi - lo > maxTaps) hi = lo + maxTaps;
    if (hi <= lo) { // box entirely outside (cannot happen for boxes inside the image); take the nearest pixel
      lo = Math.min(Math.max(Math.floor(centre), 0), size - 1);
      hi = lo + 1;
    }
    let sum = 0;
    for (let k = lo; k < hi; k++) {
      const wt = Math.max(0, 1 - Math.abs((k - centre + 0.5) / fscale));
      weights[o * maxTaps + (k - lo)] = wt;
      sum += wt;
    }
    if (sum > 0) for (let k = 0; k < hi - lo; k++) weights[o * maxTaps + k] /= sum;
    else weights[o * maxTaps] = 1;
    start[o] = lo;
    count[o] = hi - lo;
  }
  return { start, count, weights, maxTaps };
}

/**
 * Render the box `p` of `src` to an oh x ow, c-channel image in dst[off ...] as CHW floats on
 * the 0..255 scale (when `normalise` is null) or normalised (lookup tables, copy path only).
 * Boxes of exactly the output size are copied (pixels outside the image are black = 0);
 * others are resampled with the antialiased triangle filter (the box is clamped to the image).
 */
function renderBox(
  src: SourceImage, p: CropParams, oh: number, ow: number,
  dst: Float32Array, off: number, lut: Float32Array[] | null,
): void {
  const { h, w, c, data } = src;
  const hwc = src.layout === 'hwc';
  const sy = hwc ? w * c : w;
  const sx = hwc ? c : 1;
  const sc = hwc ? 1 : h * w;
  const plane = oh * ow;
  const intBox = p.w === ow && p.h === oh && Number.isInteger(p.x) && Number.isInteger(p.y);
  if (intBox) {
    for (let ch = 0; ch < c; ch++) {
      const l = lut ? lut[ch] : null;
      const zero = l ? l[0] : 0;
      const cbase = ch * sc;
      for (let y = 0; y < oh; y++) {
        const syy = p.y + y;
        const o = off + ch * plane + y * ow;
        if (syy < 0 || syy >= h) {
          dst.fill(zero, o, o + ow);
          continue;
        }
        const rbase = cbase + syy * sy;
        // Output columns whose source column p.x + x (or p.x + ow-1-x when flipped) is inside.
        let xa = Math.max(0, -p.x);
        let xb = Math.min(ow, w - p.x);
        if (p.flip) {
          const a = ow - xb;
          xb = ow - xa;
          xa = a;
        }
        if (xb <= xa) {
          dst.fill(zero, o, o + ow);
          continue;
        }
        if (xa > 0) dst.fill(zero, o, o + xa);
        if (xb < ow) dst.fill(zero, o + xb, o + ow);
        if (!p.flip) {
          let si = rbase + (p.x + xa) * sx;
          if (l) for (let x = xa; x < xb; x++, si += sx) dst[o + x] = l[data[si]];
          else for (let x = xa; x < xb; x++, si += sx) dst[o + x] = data[si];
        } else {
          let si = rbase + (p.x + ow - 1 - xa) * sx;
          if (l) for (let x = xa; x < xb; x++, si -= sx) dst[o + x] = l[data[si]];
          else for (let x = xa; x < xb; x++, si -= sx) dst[o + x] = data[si];
        }
      }
    }
    return;
  }
  // Separable resample: horizontal pass into tmp (rows y0..y1 of the source, ow columns, c
  // channels, float), then vertical into dst.
  const tx = taps(p.x, p.w, ow, w);
  const ty = taps(p.y, p.h, oh, h);
  let y0 = h;
  let y1 = 0;
  for (let o = 0; o < oh; o++) {
    if (ty.start[o] < y0) y0 = ty.start[o];
    if (ty.start[o] + ty.count[o] > y1) y1 = ty.start[o] + ty.count[o];
  }
  const rows = y1 - y0;
  const tmp = scratch(0, rows * ow * c);
  const txw = tx.weights;
  const txm = tx.maxTaps;
  if (c === 3 && hwc) {
    // The common case (decoded RGB), channels fused: one weight load per tap for all three.
    for (let r = 0; r < rows; r++) {
      const rbase = (y0 + r) * sy;
      let t = r * ow * 3;
      for (let ox = 0; ox < ow; ox++, t += 3) {
        const n = tx.count[ox];
        const wb = ox * txm;
        let idx = rbase + tx.start[ox] * 3;
        let a0 = 0;
        let a1 = 0;
        let a2 = 0;
        for (let k = 0; k < n; k++, idx += 3) {
          const wt = txw[wb + k];
          a0 += wt * data[idx];
          a1 += wt * data[idx + 1];
          a2 += wt * data[idx + 2];
        }
        tmp[t] = a0;
        tmp[t + 1] = a1;
        tmp[t + 2] = a2;
      }
    }
  } else {
    for (let r = 0; r < rows; r++) {
      const rbase = (y0 + r) * sy;
      for (let ox = 0; ox < ow; ox++) {
        const s0 = tx.start[ox];
        const n = tx.count[ox];
        const wb = ox * txm;
        for (let ch = 0; ch < c; ch++) {
          let acc = 0;
          let idx = rbase + s0 * sx + ch * sc;
          for (let k = 0; k < n; k++, idx += sx) acc += txw[wb + k] * data[idx];
          tmp[(r * ow + ox) * c + ch] = acc;
        }
      }
    }
  }
  // Vertical pass: output row oy is a weighted sum of tmp rows; accumulate whole rows
  // (ow * c contiguous floats) so the inner loop is a plain axpy.
  const rowLen = ow * c;
  const acc = scratch(1, rowLen);
  const tyw = ty.weights;
  for (let oy = 0; oy < oh; oy++) {
    const s0 = ty.start[oy] - y0;
    const n = ty.count[oy];
    const wb = oy * ty.maxTaps;
    acc.fill(0);
    for (let k = 0; k < n; k++) {
      const wt = tyw[wb + k];
      const base = (s0 + k) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] += wt * tmp[base + i];
    }
    // Scatter the HWC row into the CHW planes (mirrored when flipping).
    for (let ch = 0; ch < c; ch++) {
      const orow = off + ch * plane + oy * ow;
      if (!p.flip) for (let ox = 0, i = ch; ox < ow; ox++, i += c) dst[orow + ox] = acc[i];
      else for (let ox = 0, i = ch; ox < ow; ox++, i += c) dst[orow + ow - 1 - ox] = acc[i];
    }
  }
}

/** Brightness, contrast and normalisation of an image already in dst as 0..255 floats. */
function finish(dst: Float32Array, off: number, c: number, plane: number, p: CropParams, norm: Normalisation): void {
  for (let ch = 0; ch < c; ch++) {
    const o = off + ch * plane;
    if (p.brightness !== 0) for (let i = 0; i < plane; i++) dst[o + i] += p.brightness;
    if (p.contrast !== 1) {
      let mean = 0;
      for (let i = 0; i < plane; i++) mean += dst[o + i];
      mean /= plane;
      for (let i = 0; i < plane; i++) dst[o + i] = (dst[o + i] - mean) * p.contrast + mean;
    }
    const a = 1 / (255 * norm.std[ch]);
    const b = -norm.mean[ch] / norm.std[ch];
    for (let i = 0; i < plane; i++) dst[o + i] = dst[o + i] * a + b;
  }
}

/**
 * Apply transform `t` to one uint8 image: sample its parameters from `rng` (train) and write
 * t.size normalised floats (CHW) at dst[off]. Returns the parameters used.
 */
export function renderImage(
  t: ResolvedTransform, src: SourceImage, rng: Uniform | null, dst: Float32Array, off = 0,
  params?: CropParams,
): CropParams {
  const [c, oh, ow] = t.shape;
  let img = toChannels(src, c);
  if ((t.name === 'cifar-crop32' || t.name === 'cifar-crop24') && (img.h !== 32 || img.w !== 32)) {
    // Bring to 32x32 (shorter side to 32, centre crop) before the 32x32 crop logic.
    const tmp = new Float32Array(c * 32 * 32);
    renderBox(img, { ...centreSquare(img.h, img.w), flip: false, brightness: 0, contrast: 1 }, 32, 32, tmp, 0, null);
    const u8 = new Uint8Array(tmp.length);
    for (let i = 0; i < tmp.length; i++) u8[i] = Math.min(255, Math.max(0, Math.round(tmp[i])));
    img = { data: u8, h: 32, w: 32, c, layout: 'chw' };
  }
  const p = params ?? sampleParams(t, img.h, img.w, rng);
  const plain = p.brightness === 0 && p.contrast === 1;
  const copy = p.w === ow && p.h === oh && Number.isInteger(p.x) && Number.isInteger(p.y);
  if (plain && copy) {
    renderBox(img, p, oh, ow, dst, off, luts(t.normalisation));
  } else {
    renderBox(img, p, oh, ow, dst, off, null);
    finish(dst, off, c, oh * ow, p, t.normalisation);
  }
  return p;
}
