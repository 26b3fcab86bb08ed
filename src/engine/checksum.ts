import { crc32c as jsCrc32c } from '../hbtrie/crc32c.js';
import { nativeCrc } from '../io/native-lib.js';

/**
 * CRC32C (Castagnoli) for the whole engine: one entry point, two implementations. Ranges of
 * at least NATIVE_MIN bytes go to the native library (SSE4.2 crc32, ~30 GB/s, ~40 ns per
 * call through koffi); shorter ones, and every range when the library is missing (installed
 * without a compiler, another platform), to the JavaScript tables (~1.7 GB/s).
 */
const native = nativeCrc();
const nativeCrc32c = native?.crc32c ?? null;

/** Below this many bytes the JavaScript loop beats a synchronous FFI call (measured: 35 ns against 85 ns at 32 bytes, 88 against 66 at 64). */
export const NATIVE_MIN = 64;

/** Whether the native implementation is in use (tests, stats). */
export const crcImplementation: 'native-sse4.2' | 'native-tables' | 'javascript' =
  native ? (native.hardware ? 'native-sse4.2' : 'native-tables') : 'javascript';

/** CRC32C of bytes [start, end). */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  if (nativeCrc32c !== null && end - start >= NATIVE_MIN) return nativeCrc32c(0, buf, start, end - start);
  return jsCrc32c(buf, start, end);
}

/** The JavaScript implementation alone (tests compare the two). */
export function crc32cJs(buf: Uint8Array, start = 0, end = buf.length): number {
  return jsCrc32c(buf, start, end);
}

/**
 * Computes each record's trailing checksum in place: for i < count, CRC32C of
 * buf[spans[2i], spans[2i] + spans[2i+1]) stored little-endian right after that range.
 * One FFI call for all of them where the library is present.
 */
export function crc32cRecords(buf: Uint8Array, spans: Uint32Array, count: number): void {
  if (count === 0) return;
  if (native !== null) {
    native.records(buf, spans, count);
    return;
  }
  for (let i = 0; i < count; i++) {
    const at = spans[2 * i]!;
    const end = at + spans[2 * i + 1]!;
    const c = jsCrc32c(buf, at, end);
    buf[end] = c & 0xff;
    buf[end + 1] = (c >>> 8) & 0xff;
    buf[end + 2] = (c >>> 16) & 0xff;
    buf[end + 3] = c >>> 24;
  }
}
