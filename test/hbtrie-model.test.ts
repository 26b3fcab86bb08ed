/**
 * Model-based test of the HB+-trie: random operations (insert, update, remove, get, find, seeks,
 * range scans forward and reverse with every bound kind and limits, sorted batches) checked
 * against a sorted array, for chunk sizes 4, 8 and 16 and six key sets. Old roots (snapshots)
 * are kept and re-verified; stale-node accounting is checked against reachability; the old
 * values a batch reports as replaced are checked against the model; the structure is checked
 * with `check` (keys included) at intervals.
 *
 * Random seed: printed in the log; set HBTRIE_SEED=<n> to replay a run.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { check, collectNodes, compareKeys, HBTrie, MemoryNodeStore, type BatchOp, type RangeOptions } from '../src/hbtrie/index.js';

const SEED = process.env.HBTRIE_SEED !== undefined ? Number(process.env.HBTRIE_SEED) : (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0;
/** Top-level operations per (chunk size, key set): 3 x 6 x OPS >= 100,000. */
const OPS = Number(process.env.HBTRIE_OPS ?? 6400);

// sfc32: small, fast, seedable.
function prng(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = (): number => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (a + b + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}

type Rng = () => number;
const int = (r: Rng, n: number): number => Math.floor(r() * n);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

interface KeySet {
  name: string;
  /** A random key from the set's distribution. */
  gen(r: Rng): Uint8Array;
  /** Top-level operations for this set (long keys are expensive). */
  opsScale: number;
  smallCache?: boolean;
}

function randBytes(r: Rng, n: number, alphabet?: number[]): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = alphabet ? alphabet[int(r, alphabet.length)]! : int(r, 256);
  return out;
}

function keySets(seed: number): KeySet[] {
  const base = prng(seed ^ 0x5bd1e995);
  const longBases = [0, 1, 2, 3].map(() => randBytes(base, 8192));
  const dirs = ['a', 'b', 'c', 'usr', 'lib', 'home', 'src', 'node_modules', 'very-long-directory-name-for-testing'];
  const prefixBase = randBytes(base, 64, [0x61, 0x62]);
  return [
    {
      name: 'short random',
      opsScale: 1,
      gen: (r) => (r() < 0.5 ? randBytes(r, 1 + int(r, 10)) : randBytes(r, 1 + int(r, 10), [0x00, 0x01, 0x61, 0x62, 0xfe, 0xff])),
    },
    {
      name: 'sequential with common prefix',
      opsScale: 1,
      smallCache: true,
      gen: (r) => enc(`user:${String(1 + int(r, 4000)).padStart(9, '0')}`),
    },
    {
      name: 'long 1-8 KiB with shared prefixes',
      opsScale: 0.35,
      smallCache: true,
      gen: (r) => {
        const b = longBases[int(r, longBases.length)]!;
        const cuts = [1024, 1500, 2047, 2048, 4000, 4096, 6000, 8000];
        const keep = cuts[int(r, cuts.length)]! - int(r, 3);
        const tail = randBytes(r, int(r, 4), [0x00, 0x41, 0xff]);
        const len = Math.min(8192, keep + tail.length);
        const k = new Uint8Array(len);
        k.set(b.subarray(0, keep), 0);
        k.set(tail.subarray(0, len - keep), keep);
        return k;
      },
    },
    {
      name: 'file paths',
      opsScale: 1,
      gen: (r) => {
        const depth = 1 + int(r, 5);
        let p = '';
        for (let i = 0; i < depth; i++) p += '/' + dirs[int(r, Math.min(dirs.length, 3 + i * 2))]!;
        return enc(`${p}/file${int(r, 300)}.txt`);
      },
    },
    {
      name: 'binary 0x00/0xFF',
      opsScale: 1,
      gen: (r) => randBytes(r, 1 + int(r, 24), r() < 0.8 ? [0x00, 0xff] : [0x00, 0x01, 0xfe, 0xff]),
    },
    {
      name: 'prefixes of each other',
      opsScale: 1,
      smallCache: true,
      gen: (r) => {
        if (r() < 0.7) return prefixBase.slice(0, 1 + int(r, prefixBase.length));
        const k = prefixBase.slice(0, 1 + int(r, prefixBase.length));
        const out = new Uint8Array(k.length + 1);
        out.set(k, 0);
        out[k.length] = r() < 0.5 ? 0x00 : 0x61 + int(r, 3);
        return out;
      },
    },
  ];
}

/** Sorted-array model. */
class Model {
  keys: Uint8Array[] = [];
  vals: number[] = [];
  /** First index with keys[i] >= k. */
  lower(k: Uint8Array): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (compareKeys(this.keys[m]!, k) < 0) lo = m + 1;
      else hi = m;
    }
    return lo;
  }
  /** First index with keys[i] > k. */
  upper(k: Uint8Array): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (compareKeys(this.keys[m]!, k) <= 0) lo = m + 1;
      else hi = m;
    }
    return lo;
  }
  get(k: Uint8Array): number | undefined {
    const i = this.lower(k);
    return i < this.keys.length && compareKeys(this.keys[i]!, k) === 0 ? this.vals[i] : undefined;
  }
  put(k: Uint8Array, v: number): void {
    const i = this.lower(k);
    if (i < this.keys.length && compareKeys(this.keys[i]!, k) === 0) this.vals[i] = v;
    else {
      this.keys.splice(i, 0, k);
      this.vals.splice(i, 0, v);
    }
  }
  remove(k: Uint8Array): void {
    const i = this.lower(k);
    if (i < this.keys.length && compareKeys(this.keys[i]!, k) === 0) {
      this.keys.splice(i, 1);
      this.vals.splice(i, 1);
    }
  }
  range(o: RangeOptions): number[] {
    let lo = 0;
    let hi = this.keys.length;
    if (o.gt) lo = this.upper(o.gt);
    else if (o.gte) lo = this.lower(o.gte);
    if (o.lt) hi = this.lower(o.lt);
    else if (o.lte) hi = this.upper(o.lte);
    if (lo >= hi) return [];
    let out = this.vals.slice(lo, hi);
    if (o.reverse) out.reverse();
    if (o.limit !== undefined && o.limit >= 0) out = out.slice(0, o.limit);
    return out;
  }
  clone(): Model {
    const m = new Model();
    m.keys = this.keys.slice();
    m.vals = this.vals.slice();
    return m;
  }
}

function sameMultiset(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  const x = [...a].sort((p, q) => p - q);
  const y = [...b].sort((p, q) => p - q);
  return x.every((v, i) => v === y[i]);
}

function hex(k: Uint8Array | undefined): string {
  if (k === undefined) return '-';
  const s = Buffer.from(k).toString('hex');
  return s.length > 40 ? `${s.slice(0, 40)}…(${k.length}B)` : s;
}

interface Counts {
  ops: number;
  batchOps: number;
}

function runConfig(t: ExecutionContext, C: number, ksIndex: number, seed: number, counts: Counts): string {
  const ks = keySets(SEED)[ksIndex]!;
  const r = prng(seed);
  const blockSize = [4096, 512, 1024][(C + ksIndex) % 3]!;
  const records: Uint8Array[] = [];
  const store = new MemoryNodeStore({ blockSize, baseAddress: blockSize * 3 });
  // Some configurations get a small node cache so that nodes are also re-read, checksummed and
  // decoded from the store; the big tries get a cache that holds them.
  const cacheNodes = ks.smallCache ? 128 : 65536;
  const trie = new HBTrie({ store, keyReader: (v) => records[v]!, chunkSize: C, cacheNodes });
  const model = new Model();
  let root: number | null = null;
  const snaps: { root: number | null; model: Model; at: number }[] = [];
  const where = (op: number, what: string): string =>
    `seed=${SEED} C=${C} blockSize=${blockSize} keys="${ks.name}" op#${op}: ${what}`;
  const newValue = (k: Uint8Array): number => {
    records.push(k);
    return records.length - 1;
  };
  /** A key: an existing one, a fresh random one, or a bound-ish variant (prefix, extension). */
  const pickKey = (pExisting: number): Uint8Array => {
    if (model.keys.length > 0 && r() < pExisting) return model.keys[int(r, model.keys.length)]!;
    return ks.gen(r);
  };
  const pickBound = (): Uint8Array => {
    const x = r();
    if (model.keys.length > 0 && x < 0.35) return model.keys[int(r, model.keys.length)]!;
    if (model.keys.length > 0 && x < 0.6) {
      const k = model.keys[int(r, model.keys.length)]!;
      if (r() < 0.5 && k.length > 1) return k.slice(0, 1 + int(r, k.length - 1)); // a prefix of a key
      const e = new Uint8Array(k.length + 1);
      e.set(k, 0);
      e[k.length] = r() < 0.5 ? 0 : 0xff;
      return e.length <= trie.maxKeyLength ? e : k;
    }
    if (x < 0.7) return Uint8Array.of(r() < 0.5 ? 0x00 : 0xff);
    return ks.gen(r);
  };
  const checkStale = (op: number, before: number | null, res: { root: number | null; stale: { addr: number; size: number }[]; writtenNodes: number }): void => {
    const a = collectNodes(trie.core, before);
    const b = collectNodes(trie.core, res.root);
    const gone = new Map<number, number>();
    for (const [addr, size] of a) if (!b.has(addr)) gone.set(addr, size);
    let fresh = 0;
    for (const addr of b.keys()) if (!a.has(addr)) fresh++;
    const stale = new Map<number, number>();
    for (const s of res.stale) {
      if (stale.has(s.addr)) t.fail(where(op, `node ${s.addr} reported stale twice`));
      stale.set(s.addr, s.size);
    }
    if (stale.size !== gone.size || [...gone].some(([addr, size]) => stale.get(addr) !== size)) {
      t.fail(where(op, `stale list (${stale.size}) differs from unreachable nodes (${gone.size})`));
    }
    if (fresh !== res.writtenNodes) t.fail(where(op, `wrote ${res.writtenNodes} nodes but ${fresh} are new and reachable`));
  };
  const verifyAll = (op: number, rt: number | null, m: Model, label: string): void => {
    const got = [...trie.range(rt)];
    if (got.length !== m.vals.length || got.some((v, i) => v !== m.vals[i])) {
      t.fail(where(op, `${label}: full scan differs (got ${got.length} values, want ${m.vals.length})`));
    }
    const rev = [...trie.range(rt, { reverse: true })];
    if (rev.length !== m.vals.length || rev.some((v, i) => v !== m.vals[m.vals.length - 1 - i])) {
      t.fail(where(op, `${label}: reverse scan differs`));
    }
    for (let i = 0; i < m.keys.length; i += 1 + int(r, 4)) {
      if (trie.get(rt, m.keys[i]!) !== m.vals[i]) t.fail(where(op, `${label}: get(${hex(m.keys[i])}) wrong`));
    }
  };

  const nOps = Math.max(50, Math.round(OPS * ks.opsScale));
  let maxKeys = 0;
  let maxHeight = 0;
  for (let op = 0; op < nOps; op++) {
    counts.ops++;
    const x = r();
    if (x < 0.3) {
      // insert or update
      const k = pickKey(0.4);
      const v = newValue(k);
      const before = root;
      const res = trie.put(root, k, v);
      const old = model.get(k);
      const existed = old !== undefined;
      if (res.inserted + res.updated !== 1 || (res.updated === 1) !== existed) t.fail(where(op, `put counts wrong for ${hex(k)}`));
      if (!sameMultiset(res.replaced, existed ? [old] : [])) t.fail(where(op, `put(${hex(k)}) replaced [${res.replaced}], want [${existed ? old : ''}]`));
      if (r() < 0.05) checkStale(op, before, res);
      root = res.root;
      model.put(k, v);
      if (trie.get(root, k) !== v) t.fail(where(op, `get after put(${hex(k)}) wrong`));
    } else if (x < 0.45) {
      // remove (existing or missing)
      const k = pickKey(0.7);
      const before = root;
      const res = trie.remove(root, k);
      const old = model.get(k);
      const existed = old !== undefined;
      if (res.removed !== (existed ? 1 : 0)) t.fail(where(op, `remove(${hex(k)}) removed ${res.removed}, existed ${existed}`));
      if (!sameMultiset(res.replaced, existed ? [old] : [])) t.fail(where(op, `remove(${hex(k)}) replaced [${res.replaced}]`));
      if (!existed && (res.root !== before || res.writtenNodes !== 0)) t.fail(where(op, `removing a missing key changed the trie`));
      if (r() < 0.05) checkStale(op, before, res);
      root = res.root;
      model.remove(k);
      if (trie.get(root, k) !== undefined) t.fail(where(op, `get after remove(${hex(k)}) found it`));
    } else if (x < 0.65) {
      // get + find
      const k = pickKey(0.6);
      const want = model.get(k);
      const got = trie.get(root, k);
      if (got !== want) t.fail(where(op, `get(${hex(k)}) = ${got}, want ${want}`));
      const cand = trie.find(root, k);
      if (want !== undefined && cand !== want) t.fail(where(op, `find(${hex(k)}) = ${cand}, want ${want}`));
      if (cand !== undefined && want === undefined && compareKeys(records[cand]!, k) === 0) t.fail(where(op, 'find returned a false match'));
    } else if (x < 0.82) {
      // range scan / seek
      const o: RangeOptions = {};
      const lowKind = int(r, 3);
      const highKind = int(r, 3);
      if (lowKind === 1) o.gt = pickBound();
      if (lowKind === 2) o.gte = pickBound();
      if (highKind === 1) o.lt = pickBound();
      if (highKind === 2) o.lte = pickBound();
      if (r() < 0.5) o.reverse = true;
      const lim = r();
      if (lim < 0.4) o.limit = 1; // a seek
      else if (lim < 0.7) o.limit = int(r, 30);
      else if (lim < 0.75) o.limit = -1;
      const want = model.range(o);
      const got = [...trie.range(root, o)];
      if (got.length !== want.length || got.some((v, i) => v !== want[i])) {
        t.fail(
          where(
            op,
            `range gt=${hex(o.gt)} gte=${hex(o.gte)} lt=${hex(o.lt)} lte=${hex(o.lte)} reverse=${o.reverse} limit=${o.limit}: got [${got.slice(0, 8)}] (${got.length}) want [${want.slice(0, 8)}] (${want.length})`,
          ),
        );
      }
    } else if (x < 0.97) {
      // sorted batch of puts and removes
      let keys: Uint8Array[];
      let pRemove: number;
      if (r() < 0.012 && model.keys.length > 50) {
        // Shrink: remove most keys (underfull nodes merge, B+-trees lose levels, sub-tries collapse).
        keys = model.keys.filter(() => r() < 0.85);
        pRemove = 0.97;
      } else {
        const n = 1 + int(r, r() < 0.2 ? 400 : 60);
        const byKey = new Map<string, Uint8Array>();
        for (let i = 0; i < n; i++) {
          const k = pickKey(0.5);
          byKey.set(Buffer.from(k).toString('latin1'), k);
        }
        keys = [...byKey.values()].sort(compareKeys);
        pRemove = r() * 0.6;
      }
      const ops: BatchOp[] = keys.map((k) => (r() < pRemove ? { key: k, remove: true } : { key: k, value: newValue(k) }));
      counts.batchOps += ops.length;
      const before = root;
      const m0 = model.clone();
      const res = trie.applyBatch(root, ops);
      let ins = 0;
      let upd = 0;
      let rem = 0;
      const replaced: number[] = [];
      for (const o of ops) {
        const was = m0.get(o.key);
        const had = was !== undefined;
        if (o.remove) {
          if (had) {
            rem++;
            replaced.push(was);
          }
          model.remove(o.key);
        } else {
          if (had) {
            upd++;
            if (o.value !== was) replaced.push(was);
          } else {
            ins++;
          }
          model.put(o.key, o.value);
        }
      }
      if (res.inserted !== ins || res.updated !== upd || res.removed !== rem) {
        t.fail(where(op, `batch counts ${res.inserted}/${res.updated}/${res.removed}, want ${ins}/${upd}/${rem}`));
      }
      if (!sameMultiset(res.replaced, replaced)) {
        t.fail(where(op, `batch replaced ${res.replaced.length} old values, want ${replaced.length} (or different ones)`));
      }
      checkStale(op, before, res);
      root = res.root;
      for (const o of ops) {
        const want = model.get(o.key);
        if (trie.get(root, o.key) !== want) t.fail(where(op, `get(${hex(o.key)}) after batch wrong`));
      }
    } else if (x < 0.985) {
      snaps.push({ root, model: model.clone(), at: op });
      if (snaps.length > 6) snaps.splice(int(r, snaps.length), 1);
    } else {
      const st = check(trie.core, root, { keys: true });
      if (st.values !== model.keys.length) t.fail(where(op, `check counted ${st.values} values, model has ${model.keys.length}`));
      if (st.height > maxHeight) maxHeight = st.height;
    }
    if (model.keys.length > maxKeys) maxKeys = model.keys.length;
  }
  verifyAll(nOps, root, model, 'final');
  check(trie.core, root, { keys: true });
  for (const s of snaps) verifyAll(nOps, s.root, s.model, `snapshot from op ${s.at}`);
  // Remove everything in one batch: the trie becomes empty and every node is stale.
  const res = trie.applyBatch(root, model.keys.map((key) => ({ key, remove: true as const })));
  if (res.root !== null) t.fail(where(nOps, 'trie not empty after removing every key'));
  if (!sameMultiset(res.replaced, model.vals)) t.fail(where(nOps, 'removing every key did not report every value as replaced'));
  checkStale(nOps, root, res);
  for (const s of snaps) verifyAll(nOps, s.root, s.model, `snapshot from op ${s.at} after clearing`);
  return `up to ${maxKeys} keys, up to ${maxHeight} nodes deep (block ${blockSize})`;
}

for (const C of [4, 8, 16]) {
  test(`model: chunk size ${C}, six key sets`, (t) => {
    t.log(`seed ${SEED} (replay with HBTRIE_SEED=${SEED})`);
    const counts: Counts = { ops: 0, batchOps: 0 };
    const n = keySets(SEED).length;
    for (let ks = 0; ks < n; ks++) {
      const t0 = process.hrtime.bigint();
      const keys = runConfig(t, C, ks, (SEED + C * 1000 + ks) >>> 0, counts);
      t.log(`${keySets(SEED)[ks]!.name}: ${keys}, ${Number(process.hrtime.bigint() - t0) / 1e6 | 0} ms`);
    }
    t.log(`${counts.ops} operations (${counts.batchOps} more inside batches)`);
    t.pass();
  });
}
