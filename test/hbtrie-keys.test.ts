/**
 * CRC32C and the key encoding: known CRC vectors, the slicing-by-8 CRC against a bitwise one,
 * and the two properties the trie relies on: the encoding keeps byte order and is prefix free;
 * plus the chunk helpers against the materialized encoding.
 */
import test from 'ava';
import { crc32c } from '../src/hbtrie/crc32c.js';
import { HBTrieError } from '../src/hbtrie/errors.js';
import {
  checkKey,
  chunkCount,
  cmpKeyChunk,
  cmpKeysChunk,
  compareKeys,
  encodeKey,
  firstDiffChunk,
  keysEqual,
  MAX_KEY_LENGTH,
} from '../src/hbtrie/keys.js';
import { keyWords } from '../src/hbtrie/btree.js';

const SEED = process.env.HBTRIE_SEED !== undefined ? Number(process.env.HBTRIE_SEED) : (Date.now() % 1e9) >>> 0;

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bitwiseCrc32c(buf: Uint8Array, start: number, end: number): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) {
    c ^= buf[i]!;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

test('crc32c: known vectors (RFC 3720 B.4 and the check value)', (t) => {
  t.is(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  t.is(crc32c(new Uint8Array(0)), 0);
  t.is(crc32c(new Uint8Array(32)), 0x8a9136aa);
  t.is(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  t.is(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  t.is(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
});

test('crc32c: slicing-by-16 equals the bitwise definition on random ranges and views', (t) => {
  const r = prng(SEED);
  const buf = Uint8Array.from({ length: 5000 }, () => Math.floor(r() * 256));
  for (let i = 0; i < 300; i++) {
    const a = Math.floor(r() * buf.length);
    const b = a + Math.floor(r() * (buf.length - a));
    t.is(crc32c(buf, a, b), bitwiseCrc32c(buf, a, b), `seed ${SEED} range ${a}..${b}`);
  }
  // Continuing a CRC over two pieces equals one pass.
  t.is(crc32c(buf, 1000, 3000, crc32c(buf, 0, 1000)), crc32c(buf, 0, 3000));
  // A view at an odd offset into a larger buffer.
  const view = buf.subarray(333, 4444);
  t.is(crc32c(view, 7, 4000), bitwiseCrc32c(buf, 340, 4333));
});

function sign(x: number): number {
  return x < 0 ? -1 : x > 0 ? 1 : 0;
}

function lexCmp(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function randomKey(r: () => number): Uint8Array {
  const len = 1 + Math.floor(r() * (r() < 0.8 ? 40 : 300));
  const alpha = r() < 0.5 ? [0x00, 0xff] : r() < 0.5 ? [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff] : null;
  return Uint8Array.from({ length: len }, () => (alpha ? alpha[Math.floor(r() * alpha.length)]! : Math.floor(r() * 256)));
}

/** Pairs that stress the encoding: random, one a prefix of the other, equal but for trailing zeros. */
function pairs(r: () => number, count: number): [Uint8Array, Uint8Array][] {
  const out: [Uint8Array, Uint8Array][] = [];
  for (let i = 0; i < count; i++) {
    const a = randomKey(r);
    const kind = Math.floor(r() * 4);
    let b: Uint8Array;
    if (kind === 0) b = randomKey(r);
    else if (kind === 1) b = a.slice(0, 1 + Math.floor(r() * a.length));
    else if (kind === 2) {
      b = new Uint8Array(a.length + 1 + Math.floor(r() * 20));
      b.set(a);
      if (r() < 0.5) b.fill(0xff, a.length);
    } else {
      b = a.slice();
      if (r() < 0.7) b[Math.floor(r() * b.length)] ^= 1 << Math.floor(r() * 8);
    }
    out.push(r() < 0.5 ? [a, b] : [b, a]);
  }
  return out;
}

test('encoding keeps unsigned byte order and is prefix free, for every chunk size', (t) => {
  const r = prng(SEED + 1);
  const ps = pairs(r, 1500);
  for (let C = 4; C <= 64; C++) {
    for (const [a, b] of ps) {
      const ea = encodeKey(a, C);
      const eb = encodeKey(b, C);
      t.is(ea.length, chunkCount(a.length, C) * C);
      const want = sign(lexCmp(a, b));
      if (sign(lexCmp(ea, eb)) !== want) t.fail(`seed ${SEED} C=${C}: order differs for ${Buffer.from(a).toString('hex')} / ${Buffer.from(b).toString('hex')}`);
      if (sign(compareKeys(a, b)) !== want) t.fail(`compareKeys wrong`);
      if (keysEqual(a, b) !== (want === 0)) t.fail('keysEqual wrong');
      if (want !== 0) {
        const short = ea.length < eb.length ? ea : eb;
        const long = ea.length < eb.length ? eb : ea;
        if (short.length < long.length && lexCmp(short, long.subarray(0, short.length)) === 0) {
          t.fail(`seed ${SEED} C=${C}: an encoded key is a prefix of another`);
        }
      }
    }
  }
  t.pass();
});

test('chunk helpers agree with the materialized encoding', (t) => {
  const r = prng(SEED + 2);
  const ps = pairs(r, 400);
  for (const C of [4, 5, 7, 8, 13, 16, 33, 64]) {
    const W = (C + 3) >> 2;
    const kw = new Int32Array(W);
    const bw = new Int32Array(W);
    for (const [a, b] of ps) {
      const ea = encodeKey(a, C);
      const eb = encodeKey(b, C);
      const na = ea.length / C;
      const nb = eb.length / C;
      // firstDiffChunk = first chunk index where the encodings differ.
      let d = -1;
      for (let i = 0; i < Math.min(na, nb); i++) {
        if (lexCmp(ea.subarray(i * C, i * C + C), eb.subarray(i * C, i * C + C)) !== 0) {
          d = i;
          break;
        }
      }
      if (d < 0 && na !== nb) d = Math.min(na, nb) - 1; // cannot happen: prefix free
      t.is(firstDiffChunk(a, b, 0, C), lexCmp(a, b) === 0 ? -1 : d, `C=${C}`);
      for (let i = 0; i < Math.min(na, nb); i++) {
        const want = sign(lexCmp(ea.subarray(i * C, i * C + C), eb.subarray(i * C, i * C + C)));
        if (sign(cmpKeyChunk(a, i, C, eb, i * C)) !== want) t.fail(`cmpKeyChunk C=${C} chunk ${i}`);
        if (sign(cmpKeysChunk(a, b, i, C)) !== want) t.fail(`cmpKeysChunk C=${C} chunk ${i}`);
        keyWords(a, i, C, kw);
        keyWords(b, i, C, bw);
        let ww = 0;
        for (let w = 0; w < W && ww === 0; w++) ww = sign(kw[w]! - bw[w]!);
        if (ww !== want) t.fail(`keyWords order C=${C} chunk ${i}`);
      }
    }
  }
  t.pass();
});

test('checkKey refuses empty and over-long keys with typed errors', (t) => {
  const e1 = t.throws(() => checkKey(new Uint8Array(0)), { instanceOf: HBTrieError });
  t.is(e1?.code, 'KEY_EMPTY');
  const e2 = t.throws(() => checkKey(new Uint8Array(MAX_KEY_LENGTH + 1)), { instanceOf: HBTrieError });
  t.is(e2?.code, 'KEY_TOO_LONG');
  t.notThrows(() => checkKey(new Uint8Array(MAX_KEY_LENGTH)));
  const e3 = t.throws(() => checkKey('abc' as unknown as Uint8Array), { instanceOf: HBTrieError });
  t.is(e3?.code, 'INVALID_ARGUMENT');
  t.is(MAX_KEY_LENGTH, 65535);
});
