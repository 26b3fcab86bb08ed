/**
 * Search samples: a binary search over a large node's chunks touches a cache line per probe (a
 * 255-entry leaf spans 64 lines, so a cold search misses about 7 times). The node cache keeps,
 * beside a cached node it has looked up in, every STRIDE-th chunk's first word (as btree.ts reads
 * it) in a compact array: a search first narrows to one stride of chunks by the samples (one or
 * two lines), then searches that stride (two or three lines).
 *
 * Only the first word of each chunk is sampled, so the samples bound the search rather than end
 * it: chunks whose first word is below the key's are below the key, those whose first word is
 * above it are above it, and where first words are equal the range stays wide enough to hold
 * every chunk that may compare either way.
 */

const SIGN = 0x80000000 | 0;

/** Chunks per sample. */
export const SAMPLE_STRIDE = 16;
const STRIDE_SHIFT = 4;

/** Nodes with fewer entries than this are searched directly (their chunks span few lines). */
export const SAMPLE_MIN = 32;

/** Number of samples kept for a node of n entries (0: none). */
export function sampleCount(n: number): number {
  return n < SAMPLE_MIN ? 0 : (n + SAMPLE_STRIDE - 1) >> STRIDE_SHIFT;
}

/** Writes the samples of the n chunks of C bytes at byte offset ko of dv into out[at, at + sampleCount(n)). */
export function writeSamples(out: Int32Array, at: number, dv: DataView, ko: number, n: number, C: number): void {
  const G = sampleCount(n);
  const step = SAMPLE_STRIDE * C;
  for (let g = 0, o = ko; g < G; g++, o += step) out[at + g] = dv.getInt32(o, false) ^ SIGN;
}

/**
 * The range of entries [lo, hi) that can hold the first chunk >= (or >) the key chunk whose first
 * word is k0, among n entries with G samples at s[at, at + G): every entry before lo is below
 * the key chunk, every entry from hi on is above it. Returned as lo * 65536 + hi (n < 65536).
 */
export function sampledRange(s: Int32Array, at: number, G: number, k0: number, n: number): number {
  // a: samples below k0; b: samples at most k0 (a <= b).
  let lo = 0;
  let hi = G;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (s[at + mid]! < k0) lo = mid + 1;
    else hi = mid;
  }
  const a = lo;
  hi = G;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (s[at + mid]! <= k0) lo = mid + 1;
    else hi = mid;
  }
  const b = lo;
  // Entry STRIDE * (a - 1) is below the key chunk (so are those before it); entry STRIDE * b is
  // above it (so are those after it).
  const first = a === 0 ? 0 : ((a - 1) << STRIDE_SHIFT) + 1;
  const end = b === G ? n : b << STRIDE_SHIFT;
  return first * 65536 + end;
}
