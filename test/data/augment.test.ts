// Augmentation on tiny synthetic images: exact shift/flip/crop results, fill with the
// normalised zero, the range and determinism of random shifts.
import { describe, expect, it } from 'vitest';
import { Augmenter, cropWithPadding, flipHorizontal, shiftImage } from '../../src/data/augment.js';
import { normalisedZero } from '../../src/data/dataset.js';
import { Rng } from '../../src/util/rng.js';

// 1x3x4 image with values 1..12:
//  1  2  3  4
//  5  6  7  8
//  9 10 11 12
const shape = { c: 1, h: 3, w: 4 };
const img = Float32Array.from({ length: 12 }, (_, i) => i + 1);
const F = -9; // fill marker

function run(dx: number, dy: number, flip = false): number[] {
  const out = new Float32Array(12).fill(NaN);
  shiftImage(img, out, shape, dx, dy, [F], flip);
  return Array.from(out);
}

describe('shiftImage', () => {
  it('zero shift copies', () => {
    expect(run(0, 0)).toEqual(Array.from(img));
  });

  it('moves content right/down for positive dx/dy and fills the uncovered border', () => {
    expect(run(1, 0)).toEqual([F, 1, 2, 3, F, 5, 6, 7, F, 9, 10, 11]);
    expect(run(-2, 0)).toEqual([3, 4, F, F, 7, 8, F, F, 11, 12, F, F]);
    expect(run(0, 1)).toEqual([F, F, F, F, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(run(1, -1)).toEqual([F, 5, 6, 7, F, 9, 10, 11, F, F, F, F]);
  });

  it('fills everything when the shift is as large as the image', () => {
    expect(run(4, 0)).toEqual(new Array(12).fill(F));
    expect(run(0, -3)).toEqual(new Array(12).fill(F));
  });

  it('flips after shifting', () => {
    expect(run(0, 0, true)).toEqual([4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9]);
    expect(run(1, 0, true)).toEqual([3, 2, 1, F, 7, 6, 5, F, 11, 10, 9, F]);
    const out = new Float32Array(12);
    flipHorizontal(img, out, shape);
    expect(Array.from(out)).toEqual([4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9]);
  });

  it('uses the fill of each channel', () => {
    const two = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8); // 2x2x2
    const out = new Float32Array(8);
    shiftImage(two, out, { c: 2, h: 2, w: 2 }, 1, 0, [-1, -2]);
    expect(Array.from(out)).toEqual([-1, 1, -1, 3, -2, 5, -2, 7]);
  });

  it('crop with padding p at offset (ox, oy) is a shift by (p-ox, p-oy)', () => {
    const out = new Float32Array(12);
    cropWithPadding(img, out, shape, 2, 0, 2, [F]); // top-left of the padded image, x only
    expect(Array.from(out)).toEqual(run(2, 0));
    cropWithPadding(img, out, shape, 2, 2, 2, [F]); // centre crop = original
    expect(Array.from(out)).toEqual(Array.from(img));
  });
});

describe('Augmenter', () => {
  const single = (y: number, x: number, h = 9, w = 9): Float32Array => {
    const a = new Float32Array(h * w).fill(0);
    a[y * w + x] = 1;
    return a;
  };
  const where = (a: Float32Array, w: number): [number, number] => {
    const i = a.indexOf(1);
    return [Math.floor(i / w), i % w];
  };

  it('translates by every offset in [-k, k] and never more, deterministically', () => {
    const k = 2;
    const aug = new Augmenter({ translate: k }, { c: 1, h: 9, w: 9 }, [-0.5]);
    const src = single(4, 4);
    const seen = new Set<string>();
    const rngA = new Rng(7, 'aug');
    const rngB = new Rng(7, 'aug');
    const out = new Float32Array(81);
    const outB = new Float32Array(81);
    for (let t = 0; t < 400; t++) {
      aug.apply(src, out, rngA);
      aug.apply(src, outB, rngB);
      expect(out.every((v, i) => v === outB[i])).toBe(true);
      const [y, x] = where(out, 9);
      expect(Math.abs(y - 4)).toBeLessThanOrEqual(k);
      expect(Math.abs(x - 4)).toBeLessThanOrEqual(k);
      seen.add(`${y - 4},${x - 4}`);
      // Everything else is the fill value (here the background was 0 and is copied as 0,
      // except the border rows/columns uncovered by the shift, which are -0.5).
      expect(out.every((v) => v === 0 || v === 1 || v === -0.5)).toBe(true);
    }
    expect(seen.size).toBe(25);
  });

  it('fills with the normalised zero: black stays black under translation', () => {
    const norm = { mean: [0.1307], std: [0.3081] };
    const black = normalisedZero(norm)[0];
    const aug = new Augmenter({ translate: 3 }, { c: 1, h: 5, w: 5 }, normalisedZero(norm));
    const src = new Float32Array(25).fill(black);
    const out = new Float32Array(25);
    const rng = new Rng(1);
    for (let t = 0; t < 20; t++) {
      aug.apply(src, out, rng);
      for (const v of out) expect(v).toBe(Math.fround(black));
    }
  });

  it('hflip: true flips about half the time; crop covers [-p, p]', () => {
    const flip = new Augmenter({ hflip: true }, { c: 1, h: 1, w: 3 }, [0]);
    const rng = new Rng(3);
    const out = new Float32Array(3);
    let flips = 0;
    for (let t = 0; t < 1000; t++) {
      flip.apply(Float32Array.of(1, 2, 3), out, rng);
      if (out[0] === 3) flips++;
    }
    expect(flips).toBeGreaterThan(430);
    expect(flips).toBeLessThan(570);
    const crop = new Augmenter({ crop: { padding: 1 } }, { c: 1, h: 9, w: 9 }, [0]);
    const seen = new Set<string>();
    const o = new Float32Array(81);
    for (let t = 0; t < 200; t++) {
      crop.apply(single(4, 4), o, rng);
      const [y, x] = where(o, 9);
      seen.add(`${y},${x}`);
    }
    expect(seen.size).toBe(9);
  });

  it('validates its spec', () => {
    const s = { c: 1, h: 4, w: 4 };
    expect(() => new Augmenter({ translate: 1.5 }, s, [0])).toThrow(/translate must be an integer/);
    expect(() => new Augmenter({ translate: 1, crop: { padding: 2 } }, s, [0])).toThrow(/not both/);
    expect(() => new Augmenter({ hflip: 2 }, s, [0])).toThrow(/probability/);
    expect(() => new Augmenter({}, s, [0, 0])).toThrow(/2 fill values for 1 channels/);
    expect(new Augmenter({}, s, [0]).active).toBe(false);
  });
});
