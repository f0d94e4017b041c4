// Image header sniffing for the decode path (src/data/decode.ts): the size a PNG or JPEG
// header claims, read without decoding, and the check that the file can hold it.
//
// Reliability (docs/reliability.md): a JPEG or PNG header can claim any size up to sharp's
// pixel limit (268 MP) whatever the file holds, and libjpeg fills a short scan with grey
// instead of failing: a 269-byte JPEG claiming 16000x16000 made sharp allocate 1.5 GB and
// spend 4 s, and a 234-byte PNG claiming 524295x5 took 690 MB to resize (both found by
// test/reliability/fuzz.test.ts). Neither format compresses that far, so such a file is
// truncated or corrupt and is refused before sharp sees it:
//   PNG   deflate cannot go beyond ~1032:1, so the raw scanlines (h * (1 + w*channels*depth/8)
//         bytes) are at most PNG_MAX_RATIO times the file size;
//   JPEG  Huffman coding spends at least one bit on the DC of every 8x8 block (512 pixels a
//         byte for one component), so w*h is at most JPEG_MAX_PIXELS_PER_BYTE times the file
//         size. Only arithmetic-coded JPEGs of flat colour could go beyond it.
export const PNG_MAX_RATIO = 1100;
export const JPEG_MAX_PIXELS_PER_BYTE = 1024;

export interface SniffedSize { w: number; h: number; format: 'png' | 'jpeg'; channels: number; depth: number }

/** Width, height (and PNG channels/bit depth) from a PNG IHDR or a JPEG SOFn marker; null for other formats or no header found. */
export function sniffImageSize(b: Uint8Array): SniffedSize | null {
  if (b.length >= 26 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const channels = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[b[25]] ?? 1;
    return { w: dv.getUint32(16), h: dv.getUint32(20), format: 'png', channels, depth: Math.max(1, b[24]) };
  }
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null;
  let i = 2;
  while (i + 9 < b.length) { // walk the marker segments up to the first SOFn
    if (b[i] !== 0xff) return null;
    const m = b[i + 1];
    if (m === 0xff) { i++; continue; } // fill byte
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) { i += 2; continue; } // no length
    if (m === 0xd9 || m === 0xda) return null; // end of image / start of scan before any SOF
    const len = (b[i + 2] << 8) | b[i + 3];
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      return { h: (b[i + 5] << 8) | b[i + 6], w: (b[i + 7] << 8) | b[i + 8], format: 'jpeg', channels: b[i + 9], depth: b[i + 4] };
    }
    if (len < 2) return null;
    i += 2 + len;
  }
  return null;
}

/** Throws (a plain Error, which decodeImage turns into an ImagerateDataError naming the file) when the header's size cannot fit in the file. */
export function checkHeaderSize(bytes: Uint8Array): void {
  const s = sniffImageSize(bytes);
  if (!s) return;
  const fail = (limit: string) => {
    throw new Error(`${s.format.toUpperCase()} header says ${s.w}x${s.h} pixels but the file has only ${bytes.length} bytes ` +
      `(truncated or corrupt: ${limit}); not decoded`);
  };
  if (s.format === 'png') {
    const raw = s.h * (1 + Math.ceil((s.w * s.channels * s.depth) / 8));
    if (raw > bytes.length * PNG_MAX_RATIO) fail(`${raw} bytes of scanlines cannot deflate below 1/${PNG_MAX_RATIO} of that`);
  } else if (s.w * s.h > bytes.length * JPEG_MAX_PIXELS_PER_BYTE) {
    fail(`a JPEG holds at most ${JPEG_MAX_PIXELS_PER_BYTE} pixels a byte`);
  }
}
