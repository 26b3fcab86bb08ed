import { ForestError } from '../errors.js';

const units: Record<string, number> = {
  '': 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** Parses a byte count: a number, or a string such as '512MiB', '1 GiB', '4096'. */
export function parseSize(size: number | string, what = 'size'): number {
  if (typeof size === 'number') {
    if (Number.isSafeInteger(size) && size >= 0) return size;
    throw new ForestError('INVALID_ARGUMENT', `${what} must be a non-negative integer, got ${size}`);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(size);
  const mult = m ? units[m[2]!.toLowerCase()] : undefined;
  if (!m || mult === undefined) {
    throw new ForestError('INVALID_ARGUMENT', `${what} '${size}' is not a size like '1GiB' or '512MiB'`);
  }
  return Math.floor(Number(m[1]) * mult);
}
