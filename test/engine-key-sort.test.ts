import test from 'ava';
import { entryStr, sortByKey } from '../src/engine/key-sort.js';
import { Prng } from './helpers/engine.js';

interface Item {
  readonly str: string;
  readonly id: number;
}

const latin1 = (bytes: number[]): string => Buffer.from(bytes).toString('latin1');

/** The reference: a stable comparison sort by byte order (latin1 strings compare as bytes). */
function reference(items: readonly Item[]): Item[] {
  return items.slice().sort((a, b) => Buffer.compare(Buffer.from(a.str, 'latin1'), Buffer.from(b.str, 'latin1')) || a.id - b.id);
}

const sets: Record<string, (rng: Prng, i: number) => string> = {
  'short random': (rng) => latin1(Array.from({ length: 1 + rng.int(12) }, () => rng.int(256))),
  'sequential with a common prefix': (rng) => `user:${String(rng.int(1_000_000)).padStart(9, '0')}`,
  'long with shared prefixes': (rng) => `${'p'.repeat(1000 + rng.int(3) * 500)}/${rng.int(50)}/${'x'.repeat(rng.int(40))}${rng.int(1000)}`,
  'file paths': (rng) => `/home/u${rng.int(20)}/proj${rng.int(7)}/src/${rng.int(3) === 0 ? 'lib/' : ''}file-${rng.int(5000)}.txt`,
  'binary full of 0x00 and 0xFF': (rng) => latin1(Array.from({ length: 1 + rng.int(20) }, () => (rng.bool() ? 0x00 : 0xff))),
  'keys that are prefixes of others': (rng) => 'abcdefghijklmnopqrstuvwxyz0123456789'.slice(0, 1 + rng.int(36)) + (rng.int(4) === 0 ? String(rng.int(10)) : ''),
  'one key many times': () => 'same',
};

test('sortByKey orders like a stable byte-order comparison sort, across the radix threshold', (t) => {
  const rng = new Prng(77);
  let checked = 0;
  for (const [name, make] of Object.entries(sets)) {
    for (const n of [0, 1, 2, 511, 512, 513, 3000, 20000]) {
      const items: Item[] = Array.from({ length: n }, (_, i) => ({ str: make(rng, i), id: i }));
      const before = items.slice();
      const got = sortByKey(items, entryStr);
      t.deepEqual(items, before, `${name}, ${n}: the input is left as it was`);
      const want = reference(items);
      const same = got.length === want.length && got.every((x, i) => x === want[i]);
      if (!same) return t.fail(`${name}, ${n} items: the order differs from the reference`);
      checked += n;
    }
  }
  t.log(`${checked} items sorted`);
});
