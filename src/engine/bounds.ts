import { ForestError } from '../errors.js';
import { keyBytes, type Key, type KeyBytes } from './codec.js';

export interface RangeOptions {
  gt?: Key;
  gte?: Key;
  lt?: Key;
  lte?: Key;
  /** Only keys that start with this (combined with the bounds above). */
  prefix?: Key;
  reverse?: boolean;
  /** At most this many entries. */
  limit?: number;
}

/** Range options resolved to byte bounds (latin1 strings compare in byte order). */
export interface Bounds {
  lo: KeyBytes | null;
  loInclusive: boolean;
  hi: KeyBytes | null;
  hiInclusive: boolean;
  reverse: boolean;
  limit: number;
}

export function resolveBounds(o: RangeOptions): Bounds {
  if (typeof o !== 'object' || o === null) throw new ForestError('INVALID_ARGUMENT', 'range options must be an object');
  const limit = o.limit ?? Infinity;
  if (typeof limit !== 'number' || Number.isNaN(limit)) throw new ForestError('INVALID_ARGUMENT', 'limit must be a number');
  let lo: KeyBytes | null = null;
  let loInclusive = true;
  let hi: KeyBytes | null = null;
  let hiInclusive = false;
  if (o.gt !== undefined) {
    lo = keyBytes(o.gt);
    loInclusive = false;
  } else if (o.gte !== undefined) {
    lo = keyBytes(o.gte);
  }
  if (o.lt !== undefined) {
    hi = keyBytes(o.lt);
  } else if (o.lte !== undefined) {
    hi = keyBytes(o.lte);
    hiInclusive = true;
  }
  if (o.prefix !== undefined) {
    const p = keyBytes(o.prefix);
    // Narrow the bounds to [prefix, successor(prefix)).
    if (!lo || lo.str < p.str) {
      lo = p;
      loInclusive = true;
    }
    // Exact: the range's keys are then the keys with the prefix, and no entry is tested
    // against it (with hi = succ inclusive, succ itself would be in).
    const succ = successor(p.bytes);
    if (succ && (!hi || succ.str < hi.str || (succ.str === hi.str && hiInclusive))) {
      hi = succ;
      hiInclusive = false;
    }
  }
  return { lo, loInclusive, hi, hiInclusive, reverse: o.reverse === true, limit: limit < 0 ? Infinity : limit };
}

/** Whether a key (latin1 string) lies within the bounds. */
export function inBounds(b: Bounds, str: string): boolean {
  if (b.lo && (str < b.lo.str || (!b.loInclusive && str === b.lo.str))) return false;
  return !(b.hi && (str > b.hi.str || (!b.hiInclusive && str === b.hi.str)));
}

/** The smallest key greater than every key starting with `p`, or null if there is none. */
function successor(p: Uint8Array): KeyBytes | null {
  const s = Uint8Array.prototype.slice.call(p);
  for (let i = s.length - 1; i >= 0; i--) {
    if (s[i]! < 0xff) {
      s[i]!++;
      return keyBytes(s.subarray(0, i + 1));
    }
  }
  return null;
}
