// Seeded data augmentation on normalised NCHW images, one image (c*h*w floats) at a time.
//
//   translate: k    shift by (dx, dy), each uniform in {-k..k}; uncovered pixels are filled
//                   with the normalised zero (the value black has after normalisation).
//   crop: {padding} "random crop with padding" as in the usual CIFAR recipe: pad each side
//                   by p with black, then crop the original h x w at an offset uniform in
//                   {0..2p} per axis. This is the same as a shift by (p - ox, p - oy), and is
//                   implemented that way; crops to a smaller output size are not supported yet.
//   hflip: true|p   mirror left-right with probability 0.5 (or p), after any shift.
//
// All randomness comes from the Rng passed in (src/util/rng.ts), drawn in a fixed order per
// image (shift x, shift y, flip), so the same seed gives the same augmented batches.

import type { Rng } from '../util/rng.js';

export interface AugmentSpec {
  /** Random translation by up to ±translate pixels (integer >= 0). */
  translate?: number;
  /** Random crop of the original size from the image padded by `padding` pixels. */
  crop?: { padding: number };
  /** Horizontal flip: true means probability 0.5; a number is the probability. */
  hflip?: boolean | number;
}

export interface ImageShape { c: number; h: number; w: number }

/**
 * out(ch, y, x) = in(ch, y - dy, x' - dx) with x' = flip ? w-1-x : x, or fill[ch] where that
 * falls outside the image. Positive dx moves the content right, positive dy down.
 * `src` and `dst` hold one image each (c*h*w) and must not overlap.
 */
export function shiftImage(
  src: Float32Array, dst: Float32Array, shape: ImageShape,
  dx: number, dy: number, fill: ArrayLike<number>, flip = false,
): void {
  const { c, h, w } = shape;
  for (let ch = 0; ch < c; ch++) {
    const base = ch * h * w;
    const f = fill[ch];
    for (let y = 0; y < h; y++) {
      const o = base + y * w;
      const sy = y - dy;
      if (sy < 0 || sy >= h) {
        dst.fill(f, o, o + w);
        continue;
      }
      const s = base + sy * w;
      if (!flip) {
        // Columns x with 0 <= x - dx < w, i.e. x in [max(0,dx), min(w, w+dx)).
        const x0 = Math.max(0, dx);
        const x1 = Math.min(w, w + dx);
        if (x1 <= x0) {
          dst.fill(f, o, o + w);
          continue;
        }
        if (x0 > 0) dst.fill(f, o, o + x0);
        dst.set(src.subarray(s + x0 - dx, s + x1 - dx), o + x0);
        if (x1 < w) dst.fill(f, o + x1, o + w);
      } else {
        for (let x = 0; x < w; x++) {
          const sx = w - 1 - x - dx;
          dst[o + x] = sx >= 0 && sx < w ? src[s + sx] : f;
        }
      }
    }
  }
}

/** Mirror one image left-right. */
export function flipHorizontal(src: Float32Array, dst: Float32Array, shape: ImageShape): void {
  shiftImage(src, dst, shape, 0, 0, new Array<number>(shape.c).fill(0), true);
}

/**
 * Crop h x w at (ox, oy), ox and oy in [0, 2*padding], from the image padded by `padding`
 * pixels of fill on each side.
 */
export function cropWithPadding(
  src: Float32Array, dst: Float32Array, shape: ImageShape,
  padding: number, ox: number, oy: number, fill: ArrayLike<number>,
): void {
  shiftImage(src, dst, shape, padding - ox, padding - oy, fill);
}

/** A configured augmentation for images of one shape; apply() writes one augmented image. */
export class Augmenter {
  readonly spec: AugmentSpec;
  readonly shape: ImageShape;
  readonly fill: number[];
  private readonly maxShift: number;
  private readonly cropPad: number;
  private readonly flipP: number;

  /** `fill` is the per-channel value of black after normalisation (normalisedZero()). */
  constructor(spec: AugmentSpec, shape: ImageShape, fill: number[]) {
    const bad = (m: string): never => { throw new RangeError(`augmentation: ${m}`); };
    if (fill.length !== shape.c) bad(`${fill.length} fill values for ${shape.c} channels`);
    const t = spec.translate ?? 0;
    if (!Number.isInteger(t) || t < 0) bad(`translate must be an integer >= 0, got ${t}`);
    const p = spec.crop?.padding ?? 0;
    if (!Number.isInteger(p) || p < 0) bad(`crop padding must be an integer >= 0, got ${p}`);
    if (t > 0 && p > 0) bad('use translate or crop, not both (crop with padding p is a translation by up to ±p)');
    const hf = spec.hflip === true ? 0.5 : spec.hflip === false || spec.hflip === undefined ? 0 : spec.hflip;
    if (!(hf >= 0 && hf <= 1)) bad(`hflip probability must be in [0,1], got ${hf}`);
    this.spec = spec;
    this.shape = { ...shape };
    this.fill = [...fill];
    this.maxShift = t;
    this.cropPad = p;
    this.flipP = hf;
  }

  /** Whether apply() can change an image at all. */
  get active(): boolean {
    return this.maxShift > 0 || this.cropPad > 0 || this.flipP > 0;
  }

  /** Write an augmented copy of one image `src` into `dst` (both c*h*w, not overlapping). */
  apply(src: Float32Array, dst: Float32Array, rng: Rng): void {
    let dx = 0;
    let dy = 0;
    if (this.maxShift > 0) {
      dx = rng.int(2 * this.maxShift + 1) - this.maxShift;
      dy = rng.int(2 * this.maxShift + 1) - this.maxShift;
    } else if (this.cropPad > 0) {
      dx = this.cropPad - rng.int(2 * this.cropPad + 1);
      dy = this.cropPad - rng.int(2 * this.cropPad + 1);
    }
    const flip = this.flipP > 0 && rng.uniform() < this.flipP;
    if (dx === 0 && dy === 0 && !flip) dst.set(src);
    else shiftImage(src, dst, this.shape, dx, dy, this.fill, flip);
  }
}
