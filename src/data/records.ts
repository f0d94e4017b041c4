// Packed record files: stage 1 of MLPerf's two data stages ("decode and package once, in a
// format that is fast to read"), like TFRecord or LMDB but holding decoded uint8 pixels, so
// that training never decodes a JPEG again. Written by `imagerate pack` (packImageFolder).
//
// Layout (version 1, all integers little-endian):
//
//   header   0   8  magic "IMRTPACK"
//            8   4  u32 version (1)
//            12  4  u32 flags (0)
//            16  8  u64 count: number of records
//            24  8  u64 indexOffset: byte offset of the index
//            32  4  u32 metaBytes: size of the JSON block that follows
//            36  4  u32 reserved (0)
//   meta     40  metaBytes  UTF-8 JSON, right-padded with spaces:
//            { "format": "imagerate-pack", "version": 1, "classNames": [...], "layout": "hwc",
//              "metadata": { source, resize, channels, decoder, createdAt, images, skipped,
//                            skippedFiles (first 100), seconds, imagerate } }
//   records  from 40 + metaBytes, back to back, each
//            0  4  u32 label
//            4  2  u16 height
//            6  2  u16 width
//            8  1  u8 channels (1 or 3)
//            9  1  u8 layout (0 = HWC)
//            10 2  reserved (0)
//            12 height*width*channels bytes: uint8 pixels, HWC (row by row, channels interleaved:
//               what decoders produce, so packing needs no transpose; the stage-2 transforms
//               write CHW floats and read either layout)
//   index    at indexOffset: count entries of 16 bytes: u64 record offset, u32 label,
//            u32 record length (12 + pixel bytes). Labels sit in the index so that a reader
//            knows every label (for shuffling, class counts) without touching the records.
//   trailer  16 bytes: u64 count (again), magic "IMRTINDX"
//
// The file is written to a temporary name in the same directory and renamed into place
// after an fsync, so a reader never sees a half-written pack; count, indexOffset and the
// final metadata are patched into the header (the JSON block is reserved with 16 KiB of
// spare room) before the rename.
//
// The reader checks the magic, version, sizes, the trailer and every index entry on open,
// and each record's header against its index entry when read; every problem is an
// ImagerateDataError naming the file.
import { closeSync, fstatSync, fsyncSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ImagerateDataError } from './dataset.js';
import { DecodePool, loadSharp, type DecodedImage } from './decode.js';
import { displayName, scanImageFolder } from './imagefolder.js';
import type { DecodeResize } from './transforms.js';
import { VERSION } from '../util/version.js';

export const PACK_MAGIC = 'IMRTPACK';
export const PACK_INDEX_MAGIC = 'IMRTINDX';
export const PACK_VERSION = 1;
export const PACK_HEADER_BYTES = 40;
export const RECORD_HEADER_BYTES = 12;
export const INDEX_ENTRY_BYTES = 16;
export const TRAILER_BYTES = 16;
const META_SPARE = 16 * 1024;
const MAX_SIDE = 65535;

export interface PackMeta {
  format: 'imagerate-pack';
  version: number;
  classNames: string[];
  layout: 'hwc';
  metadata: Record<string, unknown>;
}

export interface PackedRecord {
  label: number;
  h: number;
  w: number;
  c: number;
  /** h*w*c bytes, HWC (a view; copy to keep it past the next read of the same buffer). */
  pixels: Uint8Array;
}

/**
 * Parse the record at bytes[at] (whose index says it has `length` bytes, when given). `file`
 * and `fileOffset` are for messages.
 */
export function parseRecord(bytes: Uint8Array, at: number, file: string, fileOffset: number, length?: number, label?: number): PackedRecord {
  const dv = new DataView(bytes.buffer, bytes.byteOffset + at, bytes.byteLength - at);
  if (dv.byteLength < RECORD_HEADER_BYTES) throw new ImagerateDataError(file, `record at byte ${fileOffset} is truncated (${dv.byteLength} bytes)`);
  const l = dv.getUint32(0, true);
  const h = dv.getUint16(4, true);
  const w = dv.getUint16(6, true);
  const c = dv.getUint8(8);
  const layout = dv.getUint8(9);
  const want = RECORD_HEADER_BYTES + h * w * c;
  const len = length ?? dv.byteLength;
  if (h === 0 || w === 0 || (c !== 1 && c !== 3) || layout !== 0 || want !== len || want > dv.byteLength) {
    throw new ImagerateDataError(file,
      `corrupt record at byte ${fileOffset}: header says ${h}x${w}x${c} layout ${layout} (${want} bytes) but the index gives ${len} bytes`);
  }
  if (label !== undefined && l !== label) {
    throw new ImagerateDataError(file, `corrupt record at byte ${fileOffset}: label ${l} but the index says ${label}`);
  }
  return { label: l, h, w, c, pixels: bytes.subarray(at + RECORD_HEADER_BYTES, at + want) };
}

// ---------------------------------------------------------------------------------------
// Writer

export interface PackWriterOptions {
  classNames: string[];
  metadata?: Record<string, unknown>;
}

export class PackWriter {
  readonly path: string;
  readonly tmpPath: string;
  private fd: number;
  private pos: number;
  private readonly dataStart: number;
  private readonly metaBytes: number;
  private readonly classNames: string[];
  private readonly metadata: Record<string, unknown>;
  private offsets: number[] = [];
  private labels: number[] = [];
  private lengths: number[] = [];
  private buf = Buffer.alloc(4 << 20);
  private bufUsed = 0;
  private done = false;

  constructor(path: string, opts: PackWriterOptions) {
    this.path = resolve(path);
    this.tmpPath = join(dirname(this.path), `.${basename(this.path)}.${process.pid}.${Date.now().toString(36)}.tmp`);
    this.classNames = [...opts.classNames];
    this.metadata = { ...(opts.metadata ?? {}) };
    if (this.classNames.length === 0) throw new RangeError('pack: at least one class name is needed');
    const json = Buffer.from(JSON.stringify(this.meta({})), 'utf8');
    this.metaBytes = json.length + META_SPARE;
    this.dataStart = PACK_HEADER_BYTES + this.metaBytes;
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      this.fd = openSync(this.tmpPath, 'wx');
    } catch (e) {
      throw new ImagerateDataError(this.path, `cannot write: ${(e as Error).message}`);
    }
    this.writeHeader(0, 0, {});
    this.pos = this.dataStart;
  }

  private meta(extra: Record<string, unknown>): PackMeta {
    return { format: 'imagerate-pack', version: PACK_VERSION, classNames: this.classNames, layout: 'hwc', metadata: { ...this.metadata, ...extra } };
  }

  private writeHeader(count: number, indexOffset: number, extra: Record<string, unknown>): void {
    const head = Buffer.alloc(this.dataStart ?? PACK_HEADER_BYTES + this.metaBytes, 0x20);
    head.fill(0, 0, PACK_HEADER_BYTES);
    head.write(PACK_MAGIC, 0, 'latin1');
    head.writeUInt32LE(PACK_VERSION, 8);
    head.writeUInt32LE(0, 12);
    head.writeBigUInt64LE(BigInt(count), 16);
    head.writeBigUInt64LE(BigInt(indexOffset), 24);
    head.writeUInt32LE(this.metaBytes, 32);
    let json = Buffer.from(JSON.stringify(this.meta(extra)), 'utf8');
    if (json.length > this.metaBytes) {
      // Too much to record at the end (a very long skipped list): keep what fits.
      const trimmed = { ...extra, skippedFiles: [] as string[], note: 'metadata trimmed to fit the reserved header' };
      json = Buffer.from(JSON.stringify(this.meta(trimmed)), 'utf8');
      if (json.length > this.metaBytes) json = Buffer.from(JSON.stringify(this.meta({})), 'utf8');
    }
    json.copy(head, PACK_HEADER_BYTES);
    writeSync(this.fd, head, 0, head.length, 0);
  }

  private flush(): void {
    if (this.bufUsed === 0) return;
    let off = 0;
    while (off < this.bufUsed) off += writeSync(this.fd, this.buf, off, this.bufUsed - off, this.pos - this.bufUsed + off);
    this.bufUsed = 0;
  }

  /** Records written so far. */
  get count(): number {
    return this.offsets.length;
  }

  /** Append one image: uint8 HWC pixels of h x w x c. */
  add(label: number, h: number, w: number, c: number, pixels: Uint8Array): void {
    if (this.done) throw new Error('pack writer is finished');
    if (!(Number.isInteger(label) && label >= 0 && label < this.classNames.length)) {
      throw new RangeError(`pack: label ${label} outside [0, ${this.classNames.length})`);
    }
    if (!(h >= 1 && h <= MAX_SIDE && w >= 1 && w <= MAX_SIDE) || (c !== 1 && c !== 3)) {
      throw new RangeError(`pack: image ${h}x${w}x${c} not storable (sides 1..${MAX_SIDE}, 1 or 3 channels)`);
    }
    if (pixels.length !== h * w * c) throw new RangeError(`pack: ${pixels.length} pixel bytes for ${h}x${w}x${c}`);
    const len = RECORD_HEADER_BYTES + pixels.length;
    if (this.bufUsed + len > this.buf.length) {
      this.flush();
      if (len > this.buf.length) this.buf = Buffer.alloc(len);
    }
    const b = this.buf;
    let o = this.bufUsed;
    b.writeUInt32LE(label, o);
    b.writeUInt16LE(h, o + 4);
    b.writeUInt16LE(w, o + 6);
    b[o + 8] = c;
    b[o + 9] = 0;
    b[o + 10] = 0;
    b[o + 11] = 0;
    o += RECORD_HEADER_BYTES;
    b.set(pixels, o);
    this.bufUsed += len;
    this.offsets.push(this.pos);
    this.labels.push(label);
    this.lengths.push(len);
    this.pos += len;
  }

  /** Write the index, trailer and final header; fsync; rename into place. Returns the file size. */
  finish(extraMetadata: Record<string, unknown> = {}): number {
    if (this.done) throw new Error('pack writer is finished');
    try {
      this.flush();
      const n = this.offsets.length;
      const indexOffset = this.pos;
      const index = Buffer.alloc(n * INDEX_ENTRY_BYTES + TRAILER_BYTES);
      for (let i = 0; i < n; i++) {
        index.writeBigUInt64LE(BigInt(this.offsets[i]), i * INDEX_ENTRY_BYTES);
        index.writeUInt32LE(this.labels[i], i * INDEX_ENTRY_BYTES + 8);
        index.writeUInt32LE(this.lengths[i], i * INDEX_ENTRY_BYTES + 12);
      }
      index.writeBigUInt64LE(BigInt(n), n * INDEX_ENTRY_BYTES);
      index.write(PACK_INDEX_MAGIC, n * INDEX_ENTRY_BYTES + 8, 'latin1');
      let off = 0;
      while (off < index.length) off += writeSync(this.fd, index, off, index.length - off, indexOffset + off);
      this.writeHeader(n, indexOffset, extraMetadata);
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.done = true;
      renameSync(this.tmpPath, this.path);
      return indexOffset + index.length;
    } catch (e) {
      this.abort();
      throw e instanceof ImagerateDataError ? e : new ImagerateDataError(this.path, `cannot write: ${(e as Error).message}`);
    }
  }

  /** Drop the temporary file. */
  abort(): void {
    if (!this.done) {
      this.done = true;
      try { closeSync(this.fd); } catch { /* closed */ }
    }
    rmSync(this.tmpPath, { force: true });
  }
}

// ---------------------------------------------------------------------------------------
// Reader

export class PackReader {
  readonly path: string;
  readonly count: number;
  readonly classNames: string[];
  readonly metadata: Record<string, unknown>;
  /** Label of each record (from the index). */
  readonly labels: Int32Array;
  /** Byte offset and length of each record. */
  readonly offsets: Float64Array;
  readonly lengths: Uint32Array;
  readonly fileBytes: number;
  private fd: number | null;

  private constructor(path: string, fd: number) {
    this.path = path;
    this.fd = fd;
    const fail = (p: string): never => {
      throw new ImagerateDataError(path, p);
    };
    const size = fstatSync(fd).size;
    this.fileBytes = size;
    const read = (pos: number, len: number): Buffer => {
      const b = Buffer.alloc(len);
      const got = readSync(fd, b, 0, len, pos);
      if (got !== len) fail(`truncated: needs ${len} bytes at byte ${pos}, the file has ${size} bytes`);
      return b;
    };
    if (size < PACK_HEADER_BYTES + TRAILER_BYTES) fail(`not an imagerate pack file: ${size} bytes is too small`);
    const head = read(0, PACK_HEADER_BYTES);
    const magic = head.toString('latin1', 0, 8);
    if (magic !== PACK_MAGIC) fail(`not an imagerate pack file (magic ${JSON.stringify(magic)}, expected "${PACK_MAGIC}"; create one with \`imagerate pack\`)`);
    const version = head.readUInt32LE(8);
    if (version !== PACK_VERSION) fail(`pack format version ${version} is not supported (this imagerate reads version ${PACK_VERSION})`);
    const count = Number(head.readBigUInt64LE(16));
    const indexOffset = Number(head.readBigUInt64LE(24));
    const metaBytes = head.readUInt32LE(32);
    const dataStart = PACK_HEADER_BYTES + metaBytes;
    if (indexOffset === 0 && count === 0) fail('incomplete: the header was never finalised (an interrupted `imagerate pack`?)');
    const expected = indexOffset + count * INDEX_ENTRY_BYTES + TRAILER_BYTES;
    if (!Number.isSafeInteger(count) || indexOffset < dataStart || expected !== size) {
      fail(`truncated or corrupt: header says ${count} records with the index at byte ${indexOffset} ` +
        `(file should be ${expected} bytes) but the file has ${size} bytes`);
    }
    let meta: PackMeta;
    try {
      meta = JSON.parse(read(PACK_HEADER_BYTES, metaBytes).toString('utf8')) as PackMeta;
    } catch (e) {
      fail(`corrupt metadata block: ${(e as Error).message}`);
    }
    // (a JSON null or array here made `meta.classNames` throw a TypeError: found by test/reliability/fuzz.test.ts)
    if (typeof meta! !== 'object' || meta! === null || Array.isArray(meta!)) fail(`corrupt metadata block: ${JSON.stringify(meta!).slice(0, 40)} is not a JSON object`);
    if (!meta!.classNames || !Array.isArray(meta!.classNames) || meta!.classNames.length === 0) fail('metadata has no class names');
    this.classNames = meta!.classNames.map(String);
    this.metadata = meta!.metadata ?? {};
    const idx = read(indexOffset, count * INDEX_ENTRY_BYTES + TRAILER_BYTES);
    const tcount = Number(idx.readBigUInt64LE(count * INDEX_ENTRY_BYTES));
    const tmagic = idx.toString('latin1', count * INDEX_ENTRY_BYTES + 8, count * INDEX_ENTRY_BYTES + 16);
    if (tmagic !== PACK_INDEX_MAGIC || tcount !== count) fail(`corrupt index trailer (count ${tcount}, magic ${JSON.stringify(tmagic)})`);
    this.count = count;
    this.labels = new Int32Array(count);
    this.offsets = new Float64Array(count);
    this.lengths = new Uint32Array(count);
    let prevEnd = dataStart;
    const k = this.classNames.length;
    for (let i = 0; i < count; i++) {
      const o = i * INDEX_ENTRY_BYTES;
      const off = Number(idx.readBigUInt64LE(o));
      const label = idx.readUInt32LE(o + 8);
      const len = idx.readUInt32LE(o + 12);
      if (off < prevEnd || len < RECORD_HEADER_BYTES + 1 || off + len > indexOffset) {
        fail(`corrupt index entry ${i}: record at byte ${off}, ${len} bytes (records lie in [${dataStart}, ${indexOffset}))`);
      }
      if (label >= k) fail(`corrupt index entry ${i}: label ${label} but there are ${k} classes`);
      this.offsets[i] = off;
      this.labels[i] = label;
      this.lengths[i] = len;
      prevEnd = off + len;
    }
  }

  /** Open and validate a pack file. */
  static open(path: string): PackReader {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ImagerateDataError(path, code === 'ENOENT' ? 'pack file not found' : `cannot read: ${(e as Error).message}`);
    }
    try {
      return new PackReader(resolve(path), fd);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** Record i (random access, one pread). */
  read(i: number): PackedRecord {
    if (this.fd === null) throw new Error(`${this.path}: reader is closed`);
    if (!Number.isInteger(i) || i < 0 || i >= this.count) throw new RangeError(`${basename(this.path)}: record ${i} outside [0, ${this.count})`);
    const len = this.lengths[i];
    const buf = new Uint8Array(len);
    const got = readSync(this.fd, buf, 0, len, this.offsets[i]);
    if (got !== len) throw new ImagerateDataError(this.path, `truncated: record ${i} at byte ${this.offsets[i]}`);
    return parseRecord(buf, 0, this.path, this.offsets[i], len, this.labels[i]);
  }

  /** Count of each label. */
  classCounts(): number[] {
    const h = new Array<number>(this.classNames.length).fill(0);
    for (let i = 0; i < this.count; i++) h[this.labels[i]]++;
    return h;
  }

  close(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Packing an ImageFolder

/** Resize at pack time: shorter side to N (aspect kept), or exactly W x H (aspect not kept). */
export type PackResize = Extract<DecodeResize, { mode: 'shorter' } | { mode: 'exact' }>;

/** "256" -> shorter side 256; "32x32" -> exactly 32x32. */
export function parsePackResize(s: string): PackResize {
  const m = /^\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*$/.exec(s);
  const bad = () => new RangeError(`--resize expects N (shorter side) or WxH (exact size), got '${s}'`);
  if (!m) throw bad();
  const a = Number(m[1]);
  if (a < 1 || a > MAX_SIDE) throw bad();
  if (m[2] === undefined) return { mode: 'shorter', size: a };
  const b = Number(m[2]);
  if (b < 1 || b > MAX_SIDE) throw bad();
  return { mode: 'exact', width: a, height: b };
}

export interface PackOptions {
  resize?: PackResize | null;
  /** Decode workers (default: available cores). */
  workers?: number;
  /** A file that cannot be decoded: skip it with a warning (default) or fail naming it. */
  onError?: 'skip' | 'fail';
  /** 3 (RGB, default) or 1 (grey). */
  channels?: 1 | 3;
  /** Called after each image is written or skipped. */
  onProgress?: (done: number, total: number) => void;
  /** Where warnings go (default: stderr, one line each). */
  warn?: (message: string) => void;
}

export interface PackSummary {
  out: string;
  images: number;
  skipped: number;
  skippedFiles: string[];
  classes: number;
  seconds: number;
  /** Images decoded (and written) per second, over the whole run. */
  imagesPerSecond: number;
  bytes: number;
  workers: number;
}

/** Stage 1: decode every image of an ImageFolder once and write a packed record file. */
export async function packImageFolder(root: string, out: string, opts: PackOptions = {}): Promise<PackSummary> {
  const onError = opts.onError ?? 'skip';
  if (onError !== 'skip' && onError !== 'fail') throw new RangeError(`onError must be 'skip' or 'fail', got '${String(onError)}'`);
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`imagerate: warning: ${m}\n`));
  const index = scanImageFolder(root);
  const pool = new DecodePool({ workers: opts.workers });
  const spec = { channels: opts.channels ?? 3, resize: opts.resize ?? null } as const;
  const sharp = await loadSharp();
  const writer = new PackWriter(out, {
    classNames: index.classNames,
    metadata: {
      source: index.root,
      resize: opts.resize ?? null,
      channels: spec.channels,
      decoder: `sharp ${sharp.versions.sharp ?? '?'} (libvips ${sharp.versions.vips})`,
      imagerate: VERSION,
      createdAt: new Date().toISOString(),
    },
  });
  const t0 = performance.now();
  const n = index.files.length;
  const skippedFiles: string[] = [];
  const window = Math.max(8, pool.workers * 8);
  try {
    await new Promise<void>((resolvePromise, reject) => {
      let nextLaunch = 0;
      let nextWrite = 0;
      let failed = false;
      const done = new Map<number, DecodedImage | Error>();
      const drain = (): void => {
        if (failed) return;
        try {
          while (done.has(nextWrite)) {
            const r = done.get(nextWrite)!;
            done.delete(nextWrite);
            const file = index.files[nextWrite];
            if (r instanceof Error) {
              if (onError === 'fail' || !(r instanceof ImagerateDataError)) {
                throw new ImagerateDataError(file, r instanceof ImagerateDataError ? r.problem : r.message, displayName(file, index.root));
              }
              skippedFiles.push(displayName(file, index.root));
              warn(`${file}: ${r.problem}; skipped`);
            } else {
              writer.add(index.labels[nextWrite], r.h, r.w, r.c, r.data);
            }
            nextWrite++;
            opts.onProgress?.(nextWrite, n);
          }
          launch();
        } catch (e) {
          failed = true;
          reject(e);
        }
      };
      const launch = (): void => {
        while (nextLaunch < n && nextLaunch - nextWrite < window) {
          const i = nextLaunch++;
          pool.decode(index.files[i], spec).then(
            (img) => { done.set(i, img); drain(); },
            (e: unknown) => { done.set(i, e instanceof Error ? e : new Error(String(e))); drain(); },
          );
        }
        if (nextWrite === n) resolvePromise();
      };
      launch();
    });
    if (writer.count === 0) throw new ImagerateDataError(index.root, `no image could be decoded (${n} files tried)`, root);
    const seconds = (performance.now() - t0) / 1000;
    const bytes = writer.finish({ images: writer.count, skipped: skippedFiles.length, skippedFiles: skippedFiles.slice(0, 100), seconds: +seconds.toFixed(3) });
    return {
      out: writer.path, images: writer.count, skipped: skippedFiles.length, skippedFiles, classes: index.classNames.length,
      seconds, imagesPerSecond: writer.count / seconds, bytes, workers: pool.workers,
    };
  } catch (e) {
    writer.abort();
    throw e;
  } finally {
    await pool.close();
  }
}
