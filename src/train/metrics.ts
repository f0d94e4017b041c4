// Classification metrics computed on the host from downloaded probabilities.

/** Counts examples whose label is among the k highest-scoring classes (ties: lower index first). */
export function topKCorrect(scores: Float32Array, labels: Int32Array, n: number, c: number, k: number): number {
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const row = i * c;
    const target = scores[row + labels[i]];
    // The label is in the top k iff fewer than k classes beat it.
    let better = 0;
    for (let j = 0; j < c && better < k; j++) {
      const v = scores[row + j];
      if (v > target || (v === target && j < labels[i])) better++;
    }
    if (better < k) correct++;
  }
  return correct;
}

/** Indices of the k largest entries of one row, best first. */
export function topK(row: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: row.length }, (_, i) => i);
  idx.sort((a, b) => row[b] - row[a] || a - b);
  return idx.slice(0, k);
}
