// The WAL index (wal-index.ts) and its key table (slot-table.ts): a get answers exactly what a
// Map would, ranges and a flush's sorted view what a sorted model would, through the table's
// growth, writes after a freeze (the table shared, then copied), and clears; the table answers
// with few string comparisons, also for long keys that differ only in the middle (the hash
// covers every byte).
import test, { type ExecutionContext } from 'ava';
import { keyHash } from '../src/engine/key-hash.js';
import { SlotTable } from '../src/engine/slot-table.js';
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
    // Same 40-byte head and tail, different middle (a hash of the ends alone would collide).
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

test('a view frozen just before a clear keeps its answers through the clear and the writes after it', (t) => {
  const wal = new WalIndex();
  const key = (i: number): Uint8Array => new TextEncoder().encode(`k${i}`);
  for (let i = 0; i < 3000; i++) wal.set(entry(key(i), i + 1));
  const view = wal.freeze();
  const span = wal.range(null, true, null, true);
  wal.clear();
  for (let i = 0; i < 3000; i += 2) wal.set(entry(key(i), 10_000 + i));
  for (let i = 0; i < 3000; i++) {
    t.is(lookup(view, key(i)), i + 1);
    t.is(lookup(wal, key(i)), i % 2 === 0 ? 10_000 + i : undefined);
  }
  t.is(span.length, 3000);
  t.is(span.at(0).seq, 1);
  span.release();
  view.release();
});

/** A key's strings for a SlotTable, counting how many times the table reads one. */
function countingStrs(): { strs: string[]; reads: () => number } {
  const strs: string[] = [];
  let reads = 0;
  const proxy = new Proxy(strs, {
    get(target, p, recv) {
      if (typeof p === 'string' && /^[0-9]+$/.test(p)) reads++;
      return Reflect.get(target, p, recv) as unknown;
    },
  });
  return { strs: proxy, reads: () => reads };
}

test('the key table answers as a Map does, with a weak hash, through growth, copies and clears', (t) => {
  const rng = new Prng(5);
  // A hash with 64 values: long probe runs that wrap around the table's end, and runs that
  // hold many keys of one hash, all through growth.
  const weak = (k: string): number => (Number(k) * 2654435761) % 64 | 0;
  let table = new SlotTable();
  let strs: string[] = [];
  let model = new Map<string, number>();
  const copies: { table: SlotTable; strs: string[]; model: Map<string, number> }[] = [];
  for (let i = 0; i < 20_000; i++) {
    const k = String(rng.int(3000));
    const r = rng.int(100);
    if (r < 50) {
      const slot = strs.length;
      strs.push(k);
      t.is(table.set(weak(k), slot, strs), model.get(k) ?? -1);
      model.set(k, slot);
      t.is(table.size, model.size);
    } else if (r < 97) {
      t.is(table.find(weak(k), k, strs), model.get(k) ?? -1);
    } else if (r < 99) {
      copies.push({ table: table.copy(), strs: strs.slice(), model: new Map(model) });
    } else if (rng.int(3) === 0) {
      table.clear();
      strs = [];
      model = new Map();
      t.is(table.size, 0);
    }
  }
  t.deepEqual(table.slots().sort((a, b) => a - b), [...model.values()].sort((a, b) => a - b));
  // Copies answer as of their making, whatever the original did since.
  t.true(copies.length > 100);
  for (const c of copies) {
    for (let k = 0; k < 3000; k++) t.is(c.table.find(weak(String(k)), String(k), c.strs), c.model.get(String(k)) ?? -1);
    t.is(c.table.size, c.model.size);
  }
});

test('the key table compares few strings, for absent keys and for long keys alike in all but the middle', (t) => {
  const enc = new TextEncoder();
  const { strs, reads } = countingStrs();
  const table = new SlotTable();
  for (let i = 0; i < 50_000; i++) {
    const k = enc.encode(`user:${String(i * 2).padStart(9, '0')}`);
    strs.push(Buffer.from(k).toString('latin1'));
    t.is(table.set(keyHash(k), i, strs), -1);
  }
  const afterSets = reads();
  // One string read per set (its own key's) and almost no more: only equal 32-bit hashes compare strings.
  t.true(afterSets < 50_000 + 200, `${afterSets} string reads for 50,000 new keys`);
  for (let i = 0; i < 10_000; i++) {
    const k = enc.encode(`user:${String(i * 2 + 1).padStart(9, '0')}`);
    t.is(table.find(keyHash(k), Buffer.from(k).toString('latin1'), strs), -1);
  }
  t.true(reads() - afterSets < 200, `${reads() - afterSets} string reads for 10,000 absent keys`);
  // File paths of one length that share their first and last 32 bytes.
  const paths = countingStrs();
  const long = new SlotTable();
  for (let i = 0; i < 5000; i++) {
    const k = enc.encode(`/srv/projects/shared/workspace/tenants/${String(i).padStart(6, '0')}/src/components/widgets/button/index.ts`);
    paths.strs.push(Buffer.from(k).toString('latin1'));
    t.is(long.set(keyHash(k), i, paths.strs), -1);
    t.is(long.find(keyHash(k), paths.strs[i]!, paths.strs), i);
  }
  t.true(paths.reads() < 3 * 5000 + 200, `${paths.reads()} string reads for 5,000 long keys`);
});
