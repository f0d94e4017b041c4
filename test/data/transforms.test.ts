// Stage-2 transforms: crop/flip geometry on images with known pixels, RandomResizedCrop
// bounds, eval resize + centre crop, resampling, normalisation, brightness/contrast, and
// loadImageForEval on real PNG/JPEG files.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import sharp from 'sharp';
import { Rng } from '../../src/util/rng.js';
import {
  CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD, randomResizedCropBox, renderImage, resizeCentreCropBox,
  resolveTransform, sampleParams, type SourceImage, type TransformConfig,
} from '../../src/data/transforms.js';
import { loadImageForEval } from '../../src/data/image.js';
import { MNIST_MEAN, MNIST_STD } from '../../src/data/mnist-embedded.js';
import { tempDir } from './helpers.js';

/** An h x w x c HWC image whose pixel (y, x, ch) is f(y, x, ch). */
function image(h: number, w: number, c: number, f: (y: number, x: number, ch: number) => number): SourceImage {
  const data = new Uint8Array(h * w * c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) data[(y * w + x) * c + ch] = f(y, x, ch);
  return { data, h, w, c, layout: 'hwc' };
}

/** Undo the normalisation of channel ch: back to 0..255. */
const raw = (v: number, mean: readonly number[], std: readonly number[], ch: number) => (v * std[ch] + mean[ch]) * 255;

const cfg = (c: TransformConfig) => resolveTransform(c);
const PIX = (y: number, x: number, ch: number) => (y * 32 + x + ch * 50) % 251;

describe('cifar-crop32', () => {
  const img = image(32, 32, 3, PIX);

  it('training crop with padding and flip matches a reference, black outside the image', () => {
    const t = cfg({ name: 'cifar-crop32', train: true });
    const out = new Float32Array(t.size);
    const rng = new Rng(5);
    const seen = { flip: 0, offsets: new Set<string>() };
    for (let trial = 0; trial < 200; trial++) {
      const p = renderImage(t, img, rng, out);
      expect(p.w).toBe(32);
      expect(p.x).toBeGreaterThanOrEqual(-4);
      expect(p.x).toBeLessThanOrEqual(4);
      expect(p.y).toBeGreaterThanOrEqual(-4);
      expect(p.y).toBeLessThanOrEqual(4);
      seen.flip += p.flip ? 1 : 0;
      seen.offsets.add(`${p.x},${p.y}`);
      for (let ch = 0; ch < 3; ch++) {
        for (let y = 0; y < 32; y++) {
          for (let x = 0; x < 32; x++) {
            const sy = p.y + y;
            const sx = p.x + (p.flip ? 31 - x : x);
            const want = sy < 0 || sy >= 32 || sx < 0 || sx >= 32 ? 0 : PIX(sy, sx, ch);
            const got = raw(out[ch * 1024 + y * 32 + x], CIFAR10_MEAN, CIFAR10_STD, ch);
            if (Math.abs(got - want) > 1e-3) throw new Error(`trial ${trial} (${p.x},${p.y},${p.flip}) ch${ch} y${y} x${x}: ${got} != ${want}`);
          }
        }
      }
    }
    expect(seen.flip).toBeGreaterThan(60);
    expect(seen.flip).toBeLessThan(140);
    expect(seen.offsets.size).toBeGreaterThan(60); // of 81
  });

  it('evaluation is normalisation only', () => {
    const t = cfg({ name: 'cifar-crop32', train: false });
    const out = new Float32Array(t.size);
    renderImage(t, img, new Rng(1), out);
    expect(out[2 * 1024 + 3 * 32 + 7]).toBeCloseTo((PIX(3, 7, 2) / 255 - CIFAR10_MEAN[2]) / CIFAR10_STD[2], 5);
  });

  it('reads CHW (CIFAR binary) and HWC sources alike', () => {
    const t = cfg({ name: 'cifar-crop32', train: true });
    const chw = new Uint8Array(3072);
    for (let ch = 0; ch < 3; ch++) for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) chw[ch * 1024 + y * 32 + x] = PIX(y, x, ch);
    const a = new Float32Array(t.size);
    const b = new Float32Array(t.size);
    renderImage(t, img, new Rng(9), a);
    renderImage(t, { data: chw, h: 32, w: 32, c: 3, layout: 'chw' }, new Rng(9), b);
    expect(Buffer.compare(Buffer.from(a.buffer), Buffer.from(b.buffer))).toBe(0);
  });

  it('brings a non-32x32 image to 32x32 (shorter side, centre) first', () => {
    const t = cfg({ name: 'cifar-crop32', train: false });
    const flat = image(40, 64, 3, () => 200);
    const out = new Float32Array(t.size);
    renderImage(t, flat, null, out);
    for (const v of [out[0], out[1023], out[2048 + 500]]) expect(v).toBeCloseTo((200 / 255 - CIFAR10_MEAN[0]) / CIFAR10_STD[0], 0);
  });
});

describe('cifar-crop24', () => {
  const img = image(32, 32, 3, PIX);

  it('training: a 24x24 window inside the 32x32 image, flipped half the time', () => {
    const t = cfg({ name: 'cifar-crop24', train: true });
    expect(t.shape).toEqual([3, 24, 24]);
    const out = new Float32Array(t.size);
    const rng = new Rng(2);
    for (let trial = 0; trial < 50; trial++) {
      const p = renderImage(t, img, rng, out);
      expect(p.x >= 0 && p.x <= 8 && p.y >= 0 && p.y <= 8).toBe(true);
      const sx = p.x + (p.flip ? 23 : 0);
      expect(raw(out[1 * 576 + 0], CIFAR10_MEAN, CIFAR10_STD, 1)).toBeCloseTo(PIX(p.y, sx, 1), 2);
    }
  });

  it('evaluation: the centre crop', () => {
    const t = cfg({ name: 'cifar-crop24', train: false });
    const out = new Float32Array(t.size);
    renderImage(t, img, null, out);
    expect(raw(out[0], CIFAR10_MEAN, CIFAR10_STD, 0)).toBeCloseTo(PIX(4, 4, 0), 2);
    expect(raw(out[576 - 1], CIFAR10_MEAN, CIFAR10_STD, 0)).toBeCloseTo(PIX(27, 27, 0), 2);
  });

  it('optional random brightness and contrast (off by default)', () => {
    expect(cfg({ name: 'cifar-crop24', train: true }).description).not.toMatch(/brightness|contrast/);
    const t = cfg({ name: 'cifar-crop24', train: true, brightness: 63, contrast: [0.2, 1.8], flip: 0 });
    expect(t.description).toMatch(/random brightness \+-63, random contrast 0\.2-1\.8/);
    const flat = image(32, 32, 3, (y) => 100 + y);
    const out = new Float32Array(t.size);
    const p = renderImage(t, flat, new Rng(4), out);
    expect(Math.abs(p.brightness)).toBeLessThanOrEqual(63);
    expect(p.contrast).toBeGreaterThanOrEqual(0.2);
    expect(p.contrast).toBeLessThanOrEqual(1.8);
    // Rows of the crop: 100 + p.y + r. Brightness then contrast about the crop's mean.
    const mean = 100 + p.y + 11.5 + p.brightness;
    for (const r of [0, 10, 23]) {
      const want = (100 + p.y + r + p.brightness - mean) * p.contrast + mean;
      expect(raw(out[r * 24], CIFAR10_MEAN, CIFAR10_STD, 0)).toBeCloseTo(want, 2);
    }
  });
});

describe('imagenet', () => {
  it('RandomResizedCrop boxes lie inside the image with scale and ratio in range', () => {
    const rng = new Rng(11);
    const [h, w] = [300, 400];
    for (let k = 0; k < 2000; k++) {
      const b = randomResizedCropBox(h, w, rng);
      expect(b.x >= 0 && b.y >= 0 && b.x + b.w <= w && b.y + b.h <= h).toBe(true);
      const area = (b.w * b.h) / (h * w);
      expect(area).toBeGreaterThan(0.07);
      expect(area).toBeLessThanOrEqual(1);
      const r = b.w / b.h;
      if (!(b.w === w && b.h === h)) {
        expect(r).toBeGreaterThan(0.7);
        expect(r).toBeLessThan(1.42);
      }
    }
  });

  it('RandomResizedCrop falls back to a centre crop with clamped ratio', () => {
    const never = { uniform: () => 0.999999 }; // largest scale and ratio: never fits a 10x1000 strip
    const b = randomResizedCropBox(10, 1000, never);
    expect(b).toEqual({ x: Math.floor((1000 - 13) / 2), y: 0, w: 13, h: 10 });
  });

  it('eval box: resize shorter side to 256, centre crop 224 (in source pixels)', () => {
    expect(resizeCentreCropBox(256, 320, 256, 224)).toEqual({ x: 48, y: 16, w: 224, h: 224 });
    const b = resizeCentreCropBox(512, 640, 256, 224);
    expect(b).toEqual({ x: 96, y: 32, w: 448, h: 448 });
  });

  it('eval on an image already at shorter side 256 is an exact centre crop', () => {
    const t = cfg({ name: 'imagenet', train: false });
    expect(t.shape).toEqual([3, 224, 224]);
    expect(t.description).toMatch(/resize shorter side to 256, centre crop 224/);
    const f = (y: number, x: number, ch: number) => (y * 3 + x * 5 + ch * 7) % 256;
    const img = image(256, 300, 3, f);
    const out = new Float32Array(t.size);
    renderImage(t, img, null, out);
    // box x = round((300-224)/2) = 38, y = 16
    for (const [y, x, ch] of [[0, 0, 0], [100, 37, 1], [223, 223, 2]]) {
      expect(raw(out[ch * 224 * 224 + y * 224 + x], IMAGENET_MEAN, IMAGENET_STD, ch)).toBeCloseTo(f(16 + y, 38 + x, ch), 2);
    }
  });

  it('resampling: a linear ramp stays linear, constants stay constant, with antialiasing when shrinking', () => {
    const t = cfg({ name: 'imagenet', train: false, inputSize: 16 });
    // 2x shrink of a horizontal ramp 0..255 over 36 columns: box is resized by 18/36.
    const ramp = image(36, 36, 3, (_y, x) => x * 7);
    const out = new Float32Array(t.size);
    const p = renderImage(t, ramp, null, out);
    expect(p.w).toBeCloseTo(16 * 36 / 18, 6);
    const row = Array.from({ length: 16 }, (_, x) => raw(out[5 * 16 + x], IMAGENET_MEAN, IMAGENET_STD, 0));
    const steps = row.slice(2, 14).map((v, i) => row[i + 3] - v);
    for (const s of steps) expect(s).toBeCloseTo(steps[0], 3);
    const flat = image(50, 70, 3, () => 77);
    renderImage(t, flat, null, out);
    for (const v of out.subarray(0, 256)) expect(raw(v, IMAGENET_MEAN, IMAGENET_STD, 0)).toBeCloseTo(77, 3);
  });

  it('training output follows the sampled box and flip', () => {
    const t = cfg({ name: 'imagenet', train: true, inputSize: 32 });
    const img = image(64, 80, 3, (_y, x) => x * 3);
    const out = new Float32Array(t.size);
    const rng = new Rng(3);
    for (let k = 0; k < 20; k++) {
      const p = renderImage(t, img, rng, out);
      const left = raw(out[16 * 32 + 0], IMAGENET_MEAN, IMAGENET_STD, 0);
      const right = raw(out[16 * 32 + 31], IMAGENET_MEAN, IMAGENET_STD, 0);
      // Column values grow to the right unless flipped; the crop spans [p.x, p.x + p.w).
      if (p.flip) expect(left).toBeGreaterThan(right);
      else expect(right).toBeGreaterThan(left);
      const lo = Math.min(left, right) / 3;
      const hi = Math.max(left, right) / 3;
      expect(lo).toBeGreaterThanOrEqual(p.x - 1);
      expect(hi).toBeLessThanOrEqual(p.x + p.w);
    }
  });
});

describe('sampleParams', () => {
  it('is deterministic for eval and draws only from the rng given', () => {
    const t = cfg({ name: 'imagenet', train: true });
    const a = sampleParams(t, 300, 400, new Rng(8, 'x'));
    const b = sampleParams(t, 300, 400, new Rng(8, 'x'));
    expect(a).toEqual(b);
    const e = cfg({ name: 'imagenet', train: false });
    expect(sampleParams(e, 300, 400, new Rng(1))).toEqual(sampleParams(e, 300, 400, new Rng(2)));
  });

  it('rejects bad configs', () => {
    expect(() => resolveTransform({ name: 'foo' as never, train: true })).toThrow(/unknown transform 'foo'/);
    expect(() => resolveTransform({ name: 'imagenet', train: true, scale: [0.5, 0.1] })).toThrow(/scale/);
    expect(() => resolveTransform({ name: 'cifar-crop32', train: true, normalisation: { mean: [0], std: [1] } })).toThrow(/1 means/);
  });
});

describe('loadImageForEval', () => {
  let dir: string;
  let cleanup: () => void;
  beforeAll(() => ({ dir, cleanup } = tempDir()));
  afterAll(() => cleanup());

  it('cifar-crop32 on a 32x32 PNG: exact pixels, normalised, CHW', async () => {
    const img = image(32, 32, 3, PIX);
    const f = join(dir, 'x.png');
    await sharp(Buffer.from(img.data), { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(f);
    const out = await loadImageForEval(f, { shape: [3, 32, 32], normalisation: { mean: [...CIFAR10_MEAN], std: [...CIFAR10_STD] }, transform: 'cifar-crop32' });
    expect(out.length).toBe(3072);
    expect(raw(out[1024 + 5 * 32 + 9], CIFAR10_MEAN, CIFAR10_STD, 1)).toBeCloseTo(PIX(5, 9, 1), 2);
  });

  it('imagenet on a 512x640 JPEG gives 3x224x224', async () => {
    const f = join(dir, 'big.jpg');
    await sharp({ create: { width: 640, height: 512, channels: 3, background: { r: 200, g: 100, b: 50 } } }).jpeg({ quality: 95 }).toFile(f);
    const out = await loadImageForEval(f, { shape: [3, 224, 224], normalisation: { mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] }, transform: 'imagenet' });
    expect(out.length).toBe(3 * 224 * 224);
    expect(raw(out[100], IMAGENET_MEAN, IMAGENET_STD, 0)).toBeCloseTo(200, -0.5);
    expect(raw(out[224 * 224 * 2 + 100], IMAGENET_MEAN, IMAGENET_STD, 2)).toBeCloseTo(50, -0.5);
  });

  it('mnist: greyscale 28x28 from a colour image, optional inversion', async () => {
    const f = join(dir, 'digit.png');
    await sharp({ create: { width: 56, height: 56, channels: 3, background: { r: 255, g: 255, b: 255 } } }).png().toFile(f);
    const norm = { mean: [MNIST_MEAN], std: [MNIST_STD] };
    const a = await loadImageForEval(f, { shape: [1, 28, 28], normalisation: norm, transform: 'mnist' });
    expect(a.length).toBe(784);
    expect(a[0]).toBeCloseTo((1 - MNIST_MEAN) / MNIST_STD, 3);
    const b = await loadImageForEval(f, { shape: [1, 28, 28], normalisation: norm, transform: 'mnist', invert: true });
    expect(b[400]).toBeCloseTo((0 - MNIST_MEAN) / MNIST_STD, 3);
  });

  it('refuses a shape the transform does not produce, and a corrupt file, naming it', async () => {
    const norm = { mean: [...CIFAR10_MEAN], std: [...CIFAR10_STD] };
    await expect(loadImageForEval(join(dir, 'x.png'), { shape: [3, 24, 24], normalisation: norm, transform: 'cifar-crop32' }))
      .rejects.toThrow(/x\.png: cannot prepare for a 3x24x24 input with transform cifar-crop32/);
    const bad = join(dir, 'bad.jpg');
    (await import('node:fs')).writeFileSync(bad, 'not a jpeg');
    await expect(loadImageForEval(bad, { shape: [3, 32, 32], normalisation: norm, transform: 'cifar-crop32' }))
      .rejects.toThrow(/bad\.jpg: cannot decode image/);
  });
});
