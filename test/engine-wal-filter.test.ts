// The WAL index (wal-index.ts) and its key filter (key-filter.ts): a get answers exactly what a
// Map would, ranges and a flush's sorted view what a sorted model would, through
// growth (the filter rebuilt larger), writes after a freeze (the filter shared), and clear; the filter
// answers "absent" for most absent keys (else it would filter nothing); long keys hash their
// ends only, so keys differing in the middle still get the right answer.
import test, { type ExecutionContext } from 'ava';
import { KeyFilter, keyHash } from '../src/engine/key-filter.js';
import { WalIndex, type WalEntry } from '../src/engine/wal-index.js';
import { Prng } from './helpers/engine.js';

function entry(bytes: Uint8Array, seq: number): WalEntry {
  return { str: Buffer.from(bytes).toString('latin1'), key: bytes, keyIsString: false, seq, addr: seq * 8, deleted: false, valueType: 1, value: null, size: 64 };
}

/** Short random keys, keys with a long shared middle, 0x00/0xFF-heavy keys, prefixes of each other. */
function randomKey(rng: Prng): Uint8Array {
  const kind = rng.int(4);
  if (kind === 0) return Uint8Array.from({ length: 1 + rng.int(20) }, () => rng.int(256));
  if (kind === 1) {
    // Same 40-byte head and tail, different middle: the filter hashes only the ends.
    const k = new Uint8Array(120).fill(0x61);
    k[40 + rng.int(40)] = rng.int(256);
    k[40 + rng.int(40)] = rng.int(256);
    return k;
  }
  if (kind === 2) return Uint8Array.from({ length: 1 + rng.int(12) }, () => (rng.int(2) ? 0xff : 0));
  return new TextEncoder().encode('user:' + String(rng.int(5000)).slice(0, 1 + rng.int(4)));
}

/** Ranges and flushBatch against the model; a live span keeps its entries through later writes. */
function checkRanges(t: ExecutionContext, wal: WalIndex, model: Map<string, number>, rng: Prng): void {
  for (let r = 0; r < 5; r++) {
    const keys = [...model.keys()].sort();
    const lo = rng.int(3) === 0 ? null : Buffer.from(randomKey(rng)).toString('latin1');
    const hi = rng.int(3) === 0 ? null : Buffer.from(randomKey(rng)).toString('latin1');
    const loInc = rng.int(2) === 0;
    const hiInc = rng.int(2) === 0;
    const want = keys.filter((k) => (lo === null || k > lo || (loInc && k === lo)) && (hi === null || k < hi || (hiInc && k === hi)));
    const span = wal.range(lo, loInc, hi, hiInc);
    const got = Array.from({ length: span.length }, (_, i) => span.at(i));
    t.deepEqual(got.map((e) => e.str), want);
    t.deepEqual(got.map((e) => e.seq), want.map((k) => model.get(k)));
    // Writes while the span is held (a new key, a replaced one) leave it as it was.
    if (want.length > 0) {
      const k = Buffer.from(want[0]!, 'latin1');
      wal.set(entry(k, 1e9 + r));
      wal.set(entry(Uint8Array.of(0x61, r), 1e9 + r));
      t.deepEqual(Array.from({ length: span.length }, (_, i) => span.at(i).seq), want.map((x) => model.get(x)));
      model.set(want[0]!, 1e9 + r);
      model.set(Buffer.from(Uint8Array.of(0x61, r)).toString('latin1'), 1e9 + r);
    }
    span.release?.();
  }
  // A flush's view: the entries in order, a commit's newer entries (some new keys) first.
  const extra = new Map<string, WalEntry>();
  for (let j = 0; j < 20; j++) {
    const k = randomKey(rng);
    extra.set(Buffer.from(k).toString('latin1'), entry(k, 2e9 + j));
  }
  const merged = new Map(model);
  for (const [k, e] of extra) merged.set(k, e.seq);
  const { ops, deletions } = wal.flushBatch(extra);
  t.deepEqual(ops.map((o) => Buffer.from(o.key).toString('latin1')), [...merged.keys()].sort());
  t.deepEqual(ops.map((o) => o.value), [...merged.keys()].sort().map((k) => merged.get(k)! * 8));
  t.is(deletions, 0);
}

const lookup = (w: { get(s: string, b: Uint8Array): WalEntry | undefined }, k: Uint8Array): number | undefined => w.get(Buffer.from(k).toString('latin1'), k)?.seq;

test('WAL get answers as a Map does, through growth, freezes and clears', (t) => {
  const rng = new Prng(11);
  const wal = new WalIndex();
  let model = new Map<string, number>();
  const frozen: { view: ReturnType<WalIndex['freeze']>; model: Map<string, number> }[] = [];
  let checks = 0;
  for (let i = 1; i <= 60_000; i++) {
    const k = randomKey(rng);
    const r = rng.int(1000);
    if (r < 600) {
      wal.set(entry(k, i));
      model.set(Buffer.from(k).toString('latin1'), i);
    } else if (r < 995) {
      t.is(lookup(wal, k), model.get(Buffer.from(k).toString('latin1')));
      checks++;
    } else if (r < 998) {
      frozen.push({ view: wal.freeze(), model: new Map(model) });
    } else if (r < 999 && frozen.length > 0) {
      // A frozen view still answers as of its freeze, whatever was written since.
      const f = frozen[rng.int(frozen.length)]!;
      for (const [s, seq] of f.model) t.is(lookup(f.view, Buffer.from(s, 'latin1')), seq);
      for (let j = 0; j < 50; j++) {
        const q = randomKey(rng);
        t.is(lookup(f.view, q), f.model.get(Buffer.from(q).toString('latin1')));
      }
      // And its ranges (its own merge of what was pending when it was frozen).
      const all = f.view.range(null, true, null, true);
      const sorted = [...f.model.keys()].sort();
      t.deepEqual(Array.from({ length: all.length }, (_, x) => all.at(x).seq), sorted.map((k) => f.model.get(k)));
      // Released views free the index's columns for reuse at its next clear (the others keep theirs).
      if (rng.int(2) === 0) {
        f.view.release();
        frozen.splice(frozen.indexOf(f), 1);
      }
    } else if (i > 40_000 && rng.int(4) === 0) {
      wal.clear();
      model = new Map();
    }
    if (i % 3000 === 0) checkRanges(t, wal, model, rng);
  }
  // Every key written is found, the last write's version.
  for (const [s, seq] of model) t.is(lookup(wal, Buffer.from(s, 'latin1')), seq);
  t.true(checks > 20_000);
});

test('the WAL index consults its Map for few absent keys, after growing to 50,000 keys', (t) => {
  const wal = new WalIndex();
  for (let i = 0; i < 50_000; i++) wal.set(entry(new TextEncoder().encode(`user:${String(i * 2).padStart(9, '0')}`), i + 1));
  // Count the Map lookups a get makes: a filter that did not grow (saturated) or passed
  // everything would make one per get.
  const map = (wal as unknown as { map: Map<string, number> }).map;
  const real = map.get.bind(map);
  let lookups = 0;
  map.get = (k: string) => (lookups++, real(k));
  for (let i = 0; i < 10_000; i++) t.is(lookup(wal, new TextEncoder().encode(`user:${String(i * 2 + 1).padStart(9, '0')}`)), undefined);
  t.true(lookups < 200, `${lookups} Map lookups for 10,000 absent keys`);
  t.is(lookup(wal, new TextEncoder().encode('user:000000002')), 2);
});

test('the filter rules out most absent keys and never a present one', (t) => {
  const rng = new Prng(3);
  const present = new Set<string>();
  const f0 = new KeyFilter(20_000);
  for (let i = 0; i < 20_000; i++) {
    const k = new TextEncoder().encode(`user:${String(rng.int(1e9)).padStart(9, '0')}`);
    present.add(Buffer.from(k).toString('latin1'));
    f0.addHash(keyHash(k));
  }
  t.false(f0.full);
  for (const s of present) t.true(f0.mayHave(Buffer.from(s, 'latin1')));
  let maybe = 0;
  let absent = 0;
  for (let i = 0; i < 20_000; i++) {
    const s = `user:${String(rng.int(1e9)).padStart(9, '0')}`;
    if (present.has(s)) continue;
    absent++;
    if (f0.mayHave(Buffer.from(s, 'latin1'))) maybe++;
  }
  // Two bits per key at ≥ 32 bits per key when sized for them: ~0.4% false positives.
  t.true(maybe / absent < 0.02, `false positives ${maybe}/${absent}`);
});

test('a full filter says so', (t) => {
  const f = new KeyFilter();
  let n = 0;
  while (!f.full) f.addHash(keyHash(Uint8Array.of(n & 255, n >> 8, ++n & 7)));
  t.is(n, 256);
  const bigger = KeyFilter.of([keyHash(Uint8Array.of(1)), keyHash(Uint8Array.of(2))], n);
  t.false(bigger.full);
  t.true(bigger.mayHave(Uint8Array.of(1)) && bigger.mayHave(Uint8Array.of(2)));
});
