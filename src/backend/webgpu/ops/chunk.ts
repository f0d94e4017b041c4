// Splitting flat work into bindable chunks. A buffer larger than the storage binding limit
// (Dispatcher.maxBinding: 128 MiB on lavapipe, AlexNet's fc6 weight is 144 MiB) cannot be bound
// whole; the flat ops then run once per chunk of elements, each buffer bound as a view of the
// chunk's range. Chunk starts are multiples of the view alignment (64 elements for 256 bytes),
// so element i of a chunk is element offset + i of every buffer. When every buffer binds whole,
// the op is one dispatch on whole buffers, as before.
import type { BufferHandle } from '../../backend.js';
import type { Binding, Dispatcher } from '../runtime.js';

/** Binds a buffer for one chunk: the whole buffer, or the view of the chunk's range. */
export type Bind = (buf: BufferHandle) => Binding;

/**
 * Calls `body(bind, offset, length)` over [0, n): once with whole buffers when all of `bufs`
 * bind whole, else per chunk of at most `maxChunk` elements (a multiple of `multiple`, which
 * must be a multiple of the view alignment; whatever fits a binding when unset).
 */
export function flatChunks(d: Dispatcher, op: string, n: number, bufs: BufferHandle[],
  body: (bind: Bind, offset: number, length: number) => void, multiple?: number): void {
  if (n === 0) return;
  if (bufs.every((b) => d.bindable(b))) {
    body((b) => b, 0, n);
    return;
  }
  const step = chunkElements(d, multiple);
  for (let off = 0; off < n; off += step) {
    const len = Math.min(step, n - off);
    body((b) => d.view(op, b, off, len), off, len);
  }
}

/** Elements per chunk: the most that fit a binding, rounded down to `multiple` (itself aligned) if one fits. */
export function chunkElements(d: Dispatcher, multiple?: number): number {
  const max = d.maxBinding / 4;
  const m = multiple && multiple % d.viewAlign === 0 && multiple <= max ? multiple : d.viewAlign;
  return Math.floor(max / m) * m;
}

/**
 * A view covering elements [start, start + length) of `buf`, its offset rounded down to the
 * view alignment and its length up to `round` elements: the binding and the element at which
 * the range starts inside it.
 */
export function viewOf(d: Dispatcher, op: string, buf: BufferHandle, start: number, length: number, round = 1): { view: Binding; skip: number } {
  const base = Math.floor(start / d.viewAlign) * d.viewAlign;
  const skip = start - base;
  const len = Math.ceil((skip + length) / round) * round;
  return { view: d.view(op, buf, base, len), skip };
}
