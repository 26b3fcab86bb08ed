/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven, slicing-by-8.
 * crc32c(ascii "123456789") === 0xE3069283.
 */

const POLY = 0x82f63b78;

/** 8 tables of 256 entries: T[k][b] = CRC of byte b followed by k zero bytes. */
const T = new Int32Array(8 * 256);
for (let b = 0; b < 256; b++) {
  let c = b;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  T[b] = c;
}
for (let b = 0; b < 256; b++) {
  let c = T[b]!;
  for (let t = 1; t < 8; t++) {
    c = T[c & 0xff]! ^ (c >>> 8);
    T[t * 256 + b] = c;
  }
}

/**
 * CRC32C of buf[start, end). `seed` lets a caller continue a previous CRC (pass the previous result).
 * Returns an unsigned 32-bit integer.
 */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length, seed = 0): number {
  let c = ~seed;
  let i = start;
  // Byte-at-a-time until 8 bytes remain aligned to the loop below (no alignment needed in JS).
  const stop8 = end - 7;
  while (i < stop8) {
    const lo = c ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    c =
      T[7 * 256 + (lo & 0xff)]! ^
      T[6 * 256 + ((lo >>> 8) & 0xff)]! ^
      T[5 * 256 + ((lo >>> 16) & 0xff)]! ^
      T[4 * 256 + (lo >>> 24)]! ^
      T[3 * 256 + buf[i + 4]!]! ^
      T[2 * 256 + buf[i + 5]!]! ^
      T[1 * 256 + buf[i + 6]!]! ^
      T[buf[i + 7]!]!;
    i += 8;
  }
  while (i < end) {
    c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
    i++;
  }
  return ~c >>> 0;
}
