/**
 * Sorting the WAL's entries by key: their `str`, a latin1 string with one char per key byte,
 * so that string order is byte order.
 *
 * The first range after a batched load sorts every entry written since the last index flush
 * out of key order (43,000 after the suite's random load of 200,000 keys). Sorting their keys
 * with Array.prototype.sort and then looking each entry up in the WAL's Map took ~25 ms of
 * that scan's ~190 ms. Keys written together mostly share a prefix and then differ within a
 * few bytes, so this sorts the entries themselves (no lookups) by the RADIX_BYTES bytes after
 * their common prefix with an LSD radix sort (one counting pass per byte), and compares whole
 * keys only among entries that tie on all of those bytes.
 */

/** Bytes past the common prefix that the radix passes order by; longer ties are compared. */
const RADIX_BYTES = 8;
/** Below this many entries the comparison sort is as fast. */
const SMALL = 512;

/** An item's key as a latin1 string. */
export type StrOf<T> = (item: T) => string;

/** The key of an entry that carries it (a WalEntry). */
export const entryStr: StrOf<{ readonly str: string }> = (e) => e.str;

/**
 * `items` in byte order of their keys (`strOf`), stably (items with the same key keep their
 * order); a new array, `items` is left as it was.
 */
export function sortByKey<T>(items: readonly T[], strOf: StrOf<T>): T[] {
  const n = items.length;
  if (n < SMALL) return items.slice().sort((a, b) => byStr(strOf(a), strOf(b)));
  const keys = new Array<string>(n);
  let lcp = Infinity;
  let maxLen = 0;
  const k0 = (keys[0] = strOf(items[0]!));
  for (let i = 0; i < n; i++) {
    const k = (keys[i] = strOf(items[i]!));
    if (k.length > maxLen) maxLen = k.length;
    const m = k.length < lcp ? k.length : lcp;
    let j = 0;
    while (j < m && k.charCodeAt(j) === k0.charCodeAt(j)) j++;
    lcp = j;
  }
  const width = Math.min(maxLen - lcp, RADIX_BYTES);
  // The window's bytes, a column per position (one pass reads one column: ~n × 2 bytes, not
  // the strings scattered over the heap). A key's byte at a position is stored as its bucket,
  // charCode + 1; a key that ends before it as 0, so that it sorts before every key it is a
  // prefix of.
  const cols = new Uint16Array(n * width);
  for (let i = 0; i < n; i++) {
    const k = keys[i]!;
    const end = k.length - lcp < width ? k.length - lcp : width;
    for (let q = 0; q < end; q++) cols[q * n + i] = k.charCodeAt(lcp + q) + 1;
  }
  // One pass per position, the last first (LSD: each pass is stable).
  let idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  let tmp = new Uint32Array(n);
  const count = new Uint32Array(258);
  for (let q = width - 1; q >= 0; q--) {
    const col = cols.subarray(q * n, (q + 1) * n);
    count.fill(0);
    for (let i = 0; i < n; i++) count[col[i]! + 1]!++;
    if (count[col[0]! + 1] === n) continue; // every key has the same byte here
    for (let b = 1; b < 258; b++) count[b]! += count[b - 1]!;
    for (let i = 0; i < n; i++) {
      const x = idx[i]!;
      tmp[count[col[x]!]!++] = x;
    }
    const t = idx;
    idx = tmp;
    tmp = t;
  }
  const out = new Array<T>(n);
  for (let i = 0; i < n; i++) out[i] = items[idx[i]!]!;
  if (maxLen - lcp > width) sortTies(out, strOf, lcp, lcp + width);
  return out;
}

function byStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Sorts by whole key each run of adjacent entries whose keys are equal in their first `upTo`
 * bytes (all share the first `from`) and at least that long: only those can still be out of
 * order (a key of exactly `upTo` bytes ties with the longer keys it is a prefix of).
 */
function sortTies<T>(out: T[], strOf: StrOf<T>, from: number, upTo: number): void {
  const n = out.length;
  let start = 0;
  for (let i = 1; i <= n; i++) {
    if (i < n && tied(strOf(out[i]!), strOf(out[i - 1]!), from, upTo)) continue;
    if (i - start > 1) {
      const run = out.slice(start, i).sort((a, b) => byStr(strOf(a), strOf(b)));
      for (let j = 0; j < run.length; j++) out[start + j] = run[j]!;
    }
    start = i;
  }
}

/** Whether a and b are both at least `to` long and equal in [from, to). */
function tied(a: string, b: string, from: number, to: number): boolean {
  if (a.length < to || b.length < to) return false;
  for (let i = from; i < to; i++) if (a.charCodeAt(i) !== b.charCodeAt(i)) return false;
  return true;
}
