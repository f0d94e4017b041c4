// BatchLoader: coverage (each index once per epoch), seeded shuffling, dropLast, partial
// batches, double buffering, augmentation through the loader; subset/concat helpers.
import { describe, expect, it } from 'vitest';
import { concat, subset, validateDataset } from '../../src/data/dataset.js';
import { BatchLoader, batches } from '../../src/data/loader.js';
import { synthetic } from './helpers.js';

/** The image indices a batch holds (synthetic image i is filled with the value i). */
function ids(x: Float32Array, size: number, sz: number): number[] {
  return Array.from({ length: size }, (_, j) => x[j * sz]);
}

function epochIds(loader: BatchLoader, epoch: number): number[] {
  const sz = loader.dataset.c * loader.dataset.h * loader.dataset.w;
  const out: number[] = [];
  for (const b of loader.epoch(epoch)) out.push(...ids(b.x, b.size, sz));
  return out;
}

describe('BatchLoader', () => {
  const ds = synthetic(103);

  it('without shuffle visits 0..n-1 in order with a last partial batch', () => {
    const loader = new BatchLoader(ds, { batchSize: 10 });
    const sizes: number[] = [];
    for (const b of loader.epoch(0)) {
      sizes.push(b.size);
      expect(b.x.length).toBe(b.size * 6);
      expect(b.y.length).toBe(b.size);
      for (let j = 0; j < b.size; j++) expect(b.y[j]).toBe(b.x[j * 6] % 10);
    }
    expect(sizes).toEqual([10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3]);
    expect(loader.batchesPerEpoch).toBe(11);
    expect(epochIds(loader, 0)).toEqual(Array.from({ length: 103 }, (_, i) => i));
  });

  it('shuffles each index exactly once per epoch, the same for the same seed and epoch', () => {
    const a = new BatchLoader(ds, { batchSize: 16, shuffle: true, seed: 42 });
    const b = new BatchLoader(ds, { batchSize: 16, shuffle: true, seed: 42 });
    const c = new BatchLoader(ds, { batchSize: 16, shuffle: true, seed: 43 });
    const e0 = epochIds(a, 0);
    expect([...e0].sort((p, q) => p - q)).toEqual(Array.from({ length: 103 }, (_, i) => i));
    expect(e0).not.toEqual(Array.from({ length: 103 }, (_, i) => i));
    expect(epochIds(b, 0)).toEqual(e0);       // same seed, same epoch
    expect(epochIds(a, 0)).toEqual(e0);       // re-running an epoch
    const e1 = epochIds(a, 1);
    expect(e1).not.toEqual(e0);               // a new order each epoch
    expect([...e1].sort((p, q) => p - q)).toEqual(Array.from({ length: 103 }, (_, i) => i));
    expect(epochIds(b, 1)).toEqual(e1);       // resuming at epoch 1 gives epoch 1's order
    expect(epochIds(c, 0)).not.toEqual(e0);   // another seed
    expect(Array.from(a.order(3))).toEqual(Array.from(b.order(3)));
  });

  it('dropLast drops the partial batch and rejects a batch larger than the dataset', () => {
    const loader = new BatchLoader(ds, { batchSize: 25, shuffle: true, seed: 1, dropLast: true });
    const seen = epochIds(loader, 0);
    expect(seen.length).toBe(100);
    expect(new Set(seen).size).toBe(100);
    expect(loader.batchesPerEpoch).toBe(4);
    expect(loader.imagesPerEpoch).toBe(100);
    const big = synthetic(8000, 1, 1);
    expect(() => new BatchLoader(big, { batchSize: 20000, dropLast: true }))
      .toThrow(/^batch 20000 is larger than the dataset \(8000 images\)/);
    // Without dropLast a batch larger than the dataset is one partial batch.
    const one = [...new BatchLoader(ds, { batchSize: 500 }).epoch(0)];
    expect(one.map((b) => b.size)).toEqual([103]);
    expect(() => new BatchLoader(ds, { batchSize: 0 })).toThrow(/positive integer/);
  });

  it('double-buffers: batch k is valid until batch k+2 is produced', () => {
    const loader = new BatchLoader(ds, { batchSize: 8 });
    const it = loader.epoch(0);
    const b0 = it.next().value!;
    const b1 = it.next().value!;
    expect(b1.x.buffer).not.toBe(b0.x.buffer);
    expect(ids(b0.x, 8, 6)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]); // still intact after b1
    const b2 = it.next().value!;
    expect(b2.x.buffer).toBe(b0.x.buffer);                      // b0's buffer reused
    expect(ids(b0.x, 8, 6)).toEqual([16, 17, 18, 19, 20, 21, 22, 23]);
    // The alternation continues across epochs.
    const all = [...loader.epoch(1)];
    expect(all.length).toBe(13);
  });

  it('augments deterministically per (seed, epoch) and fills with the normalised zero', () => {
    const black = -0.5 / 0.25; // synthetic normalisation: mean 0.5, std 0.25
    const d = synthetic(40, 6, 6);
    const run = (seed: number, epoch: number): Float32Array[] =>
      [...new BatchLoader(d, { batchSize: 8, shuffle: true, seed, shift: 2 }).epoch(epoch)].map((b) => b.x.slice());
    const a = run(5, 0);
    expect(run(5, 0)).toEqual(a);
    expect(run(5, 1)).not.toEqual(a);
    let filled = 0;
    for (const x of a) for (const v of x) if (v === black) filled++;
    expect(filled).toBeGreaterThan(0);
    // Each value is either the image's own value or the fill.
    for (const x of a) {
      for (let j = 0; j < 8; j++) {
        const own = new Set(Array.from(x.subarray(j * 36, (j + 1) * 36)).filter((v) => v !== black));
        expect(own.size).toBeLessThanOrEqual(1);
      }
    }
    expect(() => new BatchLoader(d, { batchSize: 8, shift: 1, augment: { hflip: true } })).toThrow(/not both/);
    expect([...batches(d, { batchSize: 16, augment: { translate: 1 } })].length).toBe(3);
  });
});

describe('subset and concat', () => {
  it('subset copies the chosen images in order', () => {
    const ds = synthetic(10);
    const s = subset(ds, [9, 0, 9]);
    validateDataset(s);
    expect(s.n).toBe(3);
    expect(ids(s.images, 3, 6)).toEqual([9, 0, 9]);
    expect(Array.from(s.labels)).toEqual([9, 0, 9]);
    s.images.fill(0);
    expect(ds.images[9 * 6]).toBe(9);
    expect(() => subset(ds, [10])).toThrow(/index 10 is outside \[0, 10\)/);
  });

  it('concat appends and checks compatibility', () => {
    const a = synthetic(4);
    const b = subset(synthetic(10), [7, 8]);
    const c = concat(a, b);
    validateDataset(c);
    expect(ids(c.images, 6, 6)).toEqual([0, 1, 2, 3, 7, 8]);
    expect(Array.from(c.labels)).toEqual([0, 1, 2, 3, 7, 8]);
    expect(() => concat(a, synthetic(2, 3, 3))).toThrow(/image shapes differ/);
    const other = { ...synthetic(2), normalisation: { mean: [0.1], std: [0.2] } };
    expect(() => concat(a, other)).toThrow(/normalisation constants differ/);
    expect(() => concat(a, synthetic(2, 2, 3, 5))).toThrow(/class lists differ/);
  });
});
