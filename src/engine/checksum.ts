import { crc32c as jsCrc32c } from '../hbtrie/crc32c.js';

/** CRC32C (Castagnoli) of bytes [start, end). One implementation for the whole engine. */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  return jsCrc32c(buf, start, end) >>> 0;
}
