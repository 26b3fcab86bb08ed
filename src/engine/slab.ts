/**
 * Private copies of small byte arrays (keys, values) carved out of shared 64 KiB chunks.
 *
 * A write must copy the caller's bytes (the caller may reuse its buffer before the commit).
 * A fresh Uint8Array of more than 64 bytes gets its own off-heap backing store, which costs an
 * allocation, external-memory accounting and a finalizer in the garbage collector: measured
 * at ~0.4 µs per 100-byte value, a tenth of a batched put. A view into a shared chunk costs
 * only the view. A chunk lives while any view of it does, so the memory held is at most the
 * live copies plus one partly used chunk per generation of writes (the WAL index keeps small
 * values until its next flush).
 */
const CHUNK = 64 * 1024;
/** Larger arrays get their own memory: a chunk must not be pinned by one big value. */
export const MAX_SHARED = 4096;

let chunk = new Uint8Array(CHUNK);
let used = 0;

/** A private copy of `src[start, end)`. */
export function copyBytes(src: Uint8Array, start = 0, end = src.length): Uint8Array {
  const n = end - start;
  // Large: memory of its own, not zeroed first (it is overwritten at once).
  const out = n > MAX_SHARED ? Buffer.allocUnsafeSlow(n) : allocBytes(n);
  if (n <= 32) {
    for (let i = 0; i < n; i++) out[i] = src[start + i]!;
  } else {
    out.set(start === 0 && end === src.length ? src : src.subarray(start, end));
  }
  return out;
}

/** Zeroed room for `n` bytes that the caller fills. */
export function allocBytes(n: number): Uint8Array {
  if (n > MAX_SHARED) return new Uint8Array(n);
  if (used + n > CHUNK) {
    chunk = new Uint8Array(CHUNK);
    used = 0;
  }
  const at = used;
  // Views stay 8-byte aligned, so word loads by their readers stay aligned.
  used = (at + n + 7) & ~7;
  return chunk.subarray(at, at + n);
}

/*
 * Large copies (values over MAX_SHARED bytes) come from a pool of power-of-two buffers that
 * the engine hands back once the commit holding them is written (releaseLarge). Each fresh
 * large buffer is external memory to V8, and a stream of them (1 GiB of 64 KiB values)
 * triggered full garbage collections: 0.31 s per 512 MiB written, a fifth of the CPU time.
 */
const POOL_BYTES = 64 << 20;
const POOL_CLASS_MAX = 16 << 20;
const pool = new Map<number, Uint8Array[]>();
let pooled = 0;

/** A copy of `src` in a pooled buffer: the copy, and the whole buffer to release later. */
export function copyLarge(src: Uint8Array): { bytes: Uint8Array; whole: Uint8Array | null } {
  const n = src.length;
  if (n <= MAX_SHARED || n > POOL_CLASS_MAX) return { bytes: copyBytes(src), whole: null };
  const size = 2 ** Math.ceil(Math.log2(n));
  const list = pool.get(size);
  let whole = list?.pop();
  if (whole) pooled -= size;
  else whole = Buffer.allocUnsafeSlow(size);
  whole.set(src);
  return { bytes: whole.subarray(0, n), whole };
}

/** Returns a buffer from copyLarge; nothing may use its copy afterwards. */
export function releaseLarge(whole: Uint8Array): void {
  if (pooled + whole.length > POOL_BYTES) return;
  let list = pool.get(whole.length);
  if (!list) pool.set(whole.length, (list = []));
  list.push(whole);
  pooled += whole.length;
}
