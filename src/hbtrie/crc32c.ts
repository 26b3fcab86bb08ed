/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven, slicing-by-16 (16
 * independent table lookups per 16 bytes, read as four little-endian words).
 * crc32c(ascii "123456789") === 0xE3069283.
 */

const POLY = 0x82f63b78;

/**
 * A CRC32C implementation the trie checksums its nodes with: CRC32C of buf[start, end), unsigned.
 * The default is `crc32c` below (no native dependency); an embedder may pass a faster one (the
 * engine's native SSE4.2 CRC), which must compute the same function.
 */
export type Checksum = (buf: Uint8Array, start: number, end: number) => number;

/** 16 tables of 256 entries: T[k][b] = CRC of byte b followed by k zero bytes. */
const T = new Int32Array(16 * 256);
for (let b = 0; b < 256; b++) {
  let c = b;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  T[b] = c;
}
for (let b = 0; b < 256; b++) {
  let c = T[b]!;
  for (let t = 1; t < 16; t++) {
    c = T[c & 0xff]! ^ (c >>> 8);
    T[t * 256 + b] = c;
  }
}

/**
 * CRC32C of buf[start, end). `seed` lets a caller continue a previous CRC (pass the previous result).
 * Returns an unsigned 32-bit integer.
 */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length, seed = 0): number {
  if (end - start < 64) return tail(buf, start, end, ~seed);
  // The trie checksums many nodes in the same few buffers (the node cache's slabs): reuse their view.
  if (buf !== lastBuf) {
    lastBuf = buf;
    lastDv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  return crc32cView(lastDv, buf, start, end, seed);
}

let lastBuf: Uint8Array | null = null;
let lastDv: DataView = new DataView(new ArrayBuffer(0));

/** crc32c over a buffer whose DataView the caller already has (`dv` and `buf` share their bytes). */
export function crc32cView(dv: DataView, buf: Uint8Array, start: number, end: number, seed = 0): number {
  let c = ~seed;
  let i = start;
  const stop = end - 15;
  while (i < stop) {
    const a = c ^ dv.getInt32(i, true);
    const b = dv.getInt32(i + 4, true);
    const d = dv.getInt32(i + 8, true);
    const e = dv.getInt32(i + 12, true);
    c =
      T[15 * 256 + (a & 0xff)]! ^
      T[14 * 256 + ((a >>> 8) & 0xff)]! ^
      T[13 * 256 + ((a >>> 16) & 0xff)]! ^
      T[12 * 256 + (a >>> 24)]! ^
      T[11 * 256 + (b & 0xff)]! ^
      T[10 * 256 + ((b >>> 8) & 0xff)]! ^
      T[9 * 256 + ((b >>> 16) & 0xff)]! ^
      T[8 * 256 + (b >>> 24)]! ^
      T[7 * 256 + (d & 0xff)]! ^
      T[6 * 256 + ((d >>> 8) & 0xff)]! ^
      T[5 * 256 + ((d >>> 16) & 0xff)]! ^
      T[4 * 256 + (d >>> 24)]! ^
      T[3 * 256 + (e & 0xff)]! ^
      T[2 * 256 + ((e >>> 8) & 0xff)]! ^
      T[256 + ((e >>> 16) & 0xff)]! ^
      T[e >>> 24]!;
    i += 16;
  }
  return tail(buf, i, end, c);
}

/** Byte at a time from state c (already inverted); returns the final CRC. */
function tail(buf: Uint8Array, i: number, end: number, c: number): number {
  for (; i < end; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
