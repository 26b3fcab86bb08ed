/**
 * HB+-trie benchmark: index size and height against a plain B+-tree over whole keys (the
 * comparison of the ForestDB paper), warm lookup and insert latency, batch apply throughput.
 *
 *   npx tsx bench/hbtrie.ts                 # 1,000,000 keys per data set
 *   npx tsx bench/hbtrie.ts --keys 100000   # smaller run
 *   options: --chunk 8 --block 4096 --batch 50000 --sets rand8,rand32,rand128,rand256,paths
 *            --updates 1000,4096,10000,100000,1000000 (update batch sizes) --cache-mb 256
 *            --checksum native|js (the node CRC32C: the engine's native one, as the engine passes it,
 *            default when the native library loads; or the trie's JavaScript default)
 *
 * Sizes are live bytes: the serialized sizes of the nodes reachable from the final root (for the
 * plain B+-tree: of all its nodes, serialized the same way: a 16-byte header, then per entry a
 * 2-byte key length, the key and an 8-byte value or child address). Both trees are built from the
 * same keys in the same random order, the trie in sorted batches (as the engine's WAL flush
 * does), the B+-tree one key at a time, both with nodes split when they outgrow one block.
 *
 * Batch updates: sorted batches of random updates of existing keys, the engine's case (its WAL
 * flushes about 4096 entries at a time into a trie of 200k to 1M keys): updates/s, and the nodes
 * and bytes each batch writes. The store copies written blocks into memory that it reuses once
 * every node in a block is stale (the bench hands it each batch's stale list, as the engine's
 * space accounting would), so the process holds about the live index, like a device whose space
 * is reclaimed, instead of a JS heap that grows by every block ever written.
 */

import { check, type Checksum, HBTrie, type BatchOp, type BlockWrite, type NodeStore, type StaleNode } from '../src/hbtrie/index.js';
import { crc32c as engineCrc32c, crcImplementation } from '../src/engine/checksum.js';

// ------------------------------------------------------------------------------------------------
// Options

function opt(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : def;
}
const N = Number(opt('keys', '1000000'));
const CHUNK = Number(opt('chunk', '8'));
const BLOCK = Number(opt('block', '4096'));
const BATCH = Number(opt('batch', '50000'));
const SETS = opt('sets', 'rand8,rand32,rand128,rand256,paths').split(',');
const UPDATE_BATCHES = opt('updates', '1000,4096,10000,100000,1000000').split(',').map(Number);
const CACHE_BYTES = Number(opt('cache-mb', '256')) * 1048576;
const CHECKSUM = opt('checksum', crcImplementation === 'javascript' ? 'js' : 'native');
if (CHECKSUM !== 'native' && CHECKSUM !== 'js') throw new Error(`--checksum ${CHECKSUM}: expected native or js`);
if (CHECKSUM === 'native' && crcImplementation === 'javascript') throw new Error('--checksum native: the native library did not load');
/** The trie's checksum option: undefined = its JavaScript default. */
const checksum: Checksum | undefined = CHECKSUM === 'native' ? engineCrc32c : undefined;

// ------------------------------------------------------------------------------------------------
// Data

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A key set stored compactly (one buffer and an offset table, not a million small objects, as an
 * engine's records would be): keyAt(i) makes a view on demand.
 */
class KeySet {
  /** Key length if all keys have the same length (no offset table lookup), else 0. */
  private readonly stride: number;
  constructor(
    readonly buf: Buffer,
    readonly offs: Float64Array,
  ) {
    const n = offs.length - 1;
    const len = n > 0 ? offs[1]! : 0;
    let same = true;
    for (let i = 0; same && i <= n; i++) same = offs[i] === i * len;
    this.stride = same ? len : 0;
  }
  get size(): number {
    return this.offs.length - 1;
  }
  keyAt(i: number): Uint8Array {
    const st = this.stride;
    if (st > 0) return new Uint8Array(this.buf.buffer, this.buf.byteOffset + i * st, st);
    const a = this.offs[i]!;
    return new Uint8Array(this.buf.buffer, this.buf.byteOffset + a, this.offs[i + 1]! - a);
  }
  compare(i: number, j: number): number {
    const b = this.buf;
    return b.compare(b, this.offs[j]!, this.offs[j + 1]!, this.offs[i]!, this.offs[i + 1]!);
  }
  bytes(): number {
    return this.offs[this.offs.length - 1]!;
  }
}

function fromList(list: Uint8Array[]): KeySet {
  const total = list.reduce((s, k) => s + k.length, 0);
  const buf = Buffer.allocUnsafe(total);
  const offs = new Float64Array(list.length + 1);
  let o = 0;
  for (let i = 0; i < list.length; i++) {
    buf.set(list[i]!, o);
    o += list[i]!.length;
    offs[i + 1] = o;
  }
  return new KeySet(buf, offs);
}

function randomKeys(n: number, len: number, seed: number): KeySet {
  const r = prng(seed);
  const buf = Buffer.allocUnsafe(n * len);
  for (let i = 0; i < buf.length; i += 4) {
    const v = (r() * 4294967296) >>> 0;
    buf[i] = v;
    buf[i + 1] = v >>> 8;
    buf[i + 2] = v >>> 16;
    buf[i + 3] = v >>> 24;
  }
  const offs = new Float64Array(n + 1);
  for (let i = 0; i <= n; i++) offs[i] = i * len;
  const ks = new KeySet(buf, offs);
  // Random 8-byte keys can collide (about 1 in 10^7 pairs at a million keys): drop duplicates.
  const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => ks.compare(a, b));
  const keep: Uint8Array[] = [];
  for (let i = 0; i < n; i++) if (i === 0 || ks.compare(order[i - 1]!, order[i]!) !== 0) keep.push(ks.keyAt(order[i]!));
  return keep.length === n ? ks : fromList(shuffle(keep, r));
}

/** Synthetic file paths: a directory tree with skewed fan-out, files with varied names. */
function pathKeys(n: number, seed: number): KeySet {
  const r = prng(seed);
  const words = ['src', 'lib', 'test', 'docs', 'node_modules', 'build', 'include', 'home', 'users', 'projects',
    'assets', 'images', 'config', 'scripts', 'vendor', 'internal', 'pkg', 'cmd', 'api', 'util'];
  const exts = ['.txt', '.ts', '.js', '.json', '.md', '.c', '.h', '.png'];
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  while (out.length < n) {
    const depth = 2 + Math.floor(r() * 5);
    let p = '';
    for (let d = 0; d < depth; d++) {
      const w = words[Math.floor(Math.pow(r(), 2) * words.length)]!;
      p += `/${w}${Math.floor(Math.pow(r(), 3) * 40)}`;
    }
    p += `/file-${Math.floor(r() * 100000)}${exts[Math.floor(r() * exts.length)]}`;
    if (seen.has(p)) continue;
    seen.add(p);
    out.push(Buffer.from(p));
  }
  return fromList(out);
}

function shuffle<T>(a: T[], r: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}

const cmp = (a: Uint8Array, b: Uint8Array): number => Buffer.compare(a, b);
void cmp;

// ------------------------------------------------------------------------------------------------
// The store

/**
 * Blocks in memory, copied in at write. Addresses are never reused (the trie requires it), but a
 * block's memory is, once release() has been told that every node in it is stale.
 */
class BenchStore implements NodeStore {
  private nextBlock = 0;
  /** Block address -> slot, and live bytes left in it. */
  private readonly slots = new Map<number, number>();
  private readonly live = new Map<number, number>();
  private readonly free: number[] = [];
  private readonly chunks: Buffer[] = [];
  private slotCount = 0;
  private static readonly PER_CHUNK = 256;
  bytesWritten = 0;
  constructor(readonly blockSize: number) {}

  private view(slot: number): Buffer {
    const per = BenchStore.PER_CHUNK;
    const o = (slot % per) * this.blockSize;
    return this.chunks[Math.floor(slot / per)]!.subarray(o, o + this.blockSize);
  }

  read(addr: number): Uint8Array {
    const off = addr % this.blockSize;
    const slot = this.slots.get(addr - off);
    if (slot === undefined) throw new Error(`bench store: no block at ${addr - off}`);
    return this.view(slot).subarray(off);
  }

  allocateBlocks(count: number): number[] {
    const out = new Array<number>(count);
    for (let i = 0; i < count; i++) out[i] = (this.nextBlock++) * this.blockSize;
    return out;
  }

  writeBlocks(blocks: readonly BlockWrite[]): void {
    for (const { addr, data } of blocks) {
      let slot = this.free.pop();
      if (slot === undefined) {
        slot = this.slotCount++;
        if (slot % BenchStore.PER_CHUNK === 0) this.chunks.push(Buffer.allocUnsafeSlow(BenchStore.PER_CHUNK * this.blockSize));
      }
      this.view(slot).set(data);
      this.slots.set(addr, slot);
      // Nodes are packed from the start of a block: sum their lengths (bytes 8..11 of each).
      let used = 0;
      while (used + 16 <= data.length && data[used + 4] === 0xb7) used += data[used + 8]! | (data[used + 9]! << 8) | (data[used + 10]! << 16);
      this.live.set(addr, used);
      this.bytesWritten += data.length;
    }
  }

  /** Nodes no root that will be read again reaches: blocks left with none become free. */
  release(stale: readonly StaleNode[]): void {
    const bs = this.blockSize;
    for (const { addr, size } of stale) {
      const blk = addr - (addr % bs);
      const left = this.live.get(blk)! - size;
      if (left > 0) {
        this.live.set(blk, left);
      } else {
        this.free.push(this.slots.get(blk)!);
        this.slots.delete(blk);
        this.live.delete(blk);
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Plain B+-tree over whole keys (the baseline): in memory, byte-bounded nodes.

const PB_HEADER = 16;
const entryBytes = (k: Uint8Array): number => 2 + k.length + 8;

interface PNode {
  leaf: boolean;
  keys: Uint8Array[];
  kids: PNode[];
  bytes: number;
}

class PlainBTree {
  root: PNode = { leaf: true, keys: [], kids: [], bytes: PB_HEADER };
  constructor(readonly limit: number) {}

  insert(key: Uint8Array): void {
    const split = this.ins(this.root, key);
    if (split !== null) {
      const old = this.root;
      this.root = { leaf: false, keys: [old.keys[0]!, split.keys[0]!], kids: [old, split], bytes: PB_HEADER + entryBytes(old.keys[0]!) + entryBytes(split.keys[0]!) };
    }
  }

  private ins(node: PNode, key: Uint8Array): PNode | null {
    // first index with keys[i] > key
    let lo = 0;
    let hi = node.keys.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (cmp(node.keys[m]!, key) <= 0) lo = m + 1;
      else hi = m;
    }
    if (node.leaf) {
      node.keys.splice(lo, 0, key);
      node.bytes += entryBytes(key);
    } else {
      const ci = lo > 0 ? lo - 1 : 0;
      const child = node.kids[ci]!;
      const oldMin = child.keys[0]!;
      const split = this.ins(child, key);
      if (child.keys[0] !== oldMin) {
        node.bytes += entryBytes(child.keys[0]!) - entryBytes(oldMin);
        node.keys[ci] = child.keys[0]!;
      }
      if (split !== null) {
        node.keys.splice(ci + 1, 0, split.keys[0]!);
        node.kids.splice(ci + 1, 0, split);
        node.bytes += entryBytes(split.keys[0]!);
      }
    }
    if (node.bytes <= this.limit) return null;
    // split in half by bytes
    let acc = PB_HEADER;
    let cut = 0;
    while (cut < node.keys.length - 1 && acc + entryBytes(node.keys[cut]!) <= node.bytes / 2) acc += entryBytes(node.keys[cut++]!);
    if (cut === 0) cut = 1;
    const right: PNode = { leaf: node.leaf, keys: node.keys.splice(cut), kids: node.leaf ? [] : node.kids.splice(cut), bytes: 0 };
    right.bytes = PB_HEADER + right.keys.reduce((s, k) => s + entryBytes(k), 0);
    node.bytes = PB_HEADER + node.keys.reduce((s, k) => s + entryBytes(k), 0);
    return right;
  }

  stats(): { bytes: number; height: number; nodes: number } {
    let bytes = 0;
    let nodes = 0;
    let height = 0;
    const walk = (n: PNode, d: number): void => {
      bytes += n.bytes;
      nodes++;
      if (d > height) height = d;
      for (const c of n.kids) walk(c, d + 1);
    };
    walk(this.root, 1);
    return { bytes, height, nodes };
  }
}

// ------------------------------------------------------------------------------------------------
// Measurements

interface Row {
  set: string;
  keys: number;
  keyLen: number;
  trieBytes: number;
  trieHeight: number;
  trieMean: number;
  btreeBytes: number;
  btreeHeight: number;
  getNs: number;
  findNs: number;
  insertUs: number;
  buildUps: number;
  upd: Map<number, Upd>;
}

interface Upd {
  /** Updates/s: median and best batch. */
  median: number;
  best: number;
  /** Mean nodes, blocks and KiB written per batch. */
  nodes: number;
  blocks: number;
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const mib = (b: number): string => (b / 1048576).toFixed(1);

function runSet(name: string): Row {
  const t0 = now();
  const ks = name === 'paths' ? pathKeys(N, 7) : randomKeys(N, Number(name.replace('rand', '')), name.length * 1000 + 11);
  const n = ks.size;
  const keyLen = ks.bytes() / n;
  // Values: v = index + n * version; the KeyReader maps a value back to its key, as the engine
  // maps a record address to the record's key.
  const keyReader = (v: number): Uint8Array => ks.keyAt(v % n);
  const store = new BenchStore(BLOCK);
  const trie = new HBTrie({ store, keyReader, chunkSize: CHUNK, cacheBytes: CACHE_BYTES, checksum });
  const r = prng(99);
  const order = shuffle(Array.from({ length: n }, (_, i) => i), r);
  const sortIdx = (idx: number[]): number[] => idx.sort((a, b) => ks.compare(a, b));

  // Build the trie in sorted batches of BATCH keys in random order (the engine's WAL flushes).
  let root: number | null = null;
  let tb = now();
  let buildMs = 0;
  for (let s = 0; s < n; s += BATCH) {
    const idx = sortIdx(order.slice(s, s + BATCH));
    const ops: BatchOp[] = idx.map((i) => ({ key: ks.keyAt(i), value: i }));
    tb = now();
    const res = trie.applyBatch(root, ops);
    buildMs += now() - tb;
    root = res.root;
    store.release(res.stale);
  }
  const st = check(trie.core, root);
  if (st.values !== n) throw new Error(`trie holds ${st.values} values, expected ${n}`);

  // Plain B+-tree over whole keys, same insertion order.
  const bt = new PlainBTree(BLOCK);
  for (let i = 0; i < n; i++) bt.insert(ks.keyAt(order[i]!));
  const bst = bt.stats();

  // Warm lookups (every node is cached after the build and a first pass).
  const probes = Math.min(n, 500000);
  // (Released before the update phase, so its half a million views do not weigh on the GC there.)
  let probeKeys: Uint8Array[] = Array.from({ length: probes }, () => ks.keyAt(Math.floor(r() * n)));
  let sink = 0;
  for (let i = 0; i < probes; i++) sink += trie.get(root, probeKeys[i]!)!;
  const getRuns: number[] = [];
  const findRuns: number[] = [];
  for (let rep = 0; rep < 3; rep++) {
    tb = now();
    for (let i = 0; i < probes; i++) sink += trie.get(root, probeKeys[i]!)!;
    getRuns.push(((now() - tb) * 1e6) / probes);
    tb = now();
    for (let i = 0; i < probes; i++) sink += trie.find(root, probeKeys[i]!)!;
    findRuns.push(((now() - tb) * 1e6) / probes);
  }
  probeKeys = [];

  // Batch apply: sorted batches of random updates to existing keys.
  let version = 0;
  const upd = new Map<number, Upd>();
  for (const size of UPDATE_BATCHES) {
    if (size > n) continue;
    // About 2 s per size on an idle machine, at least 2 batches and at most 40.
    const rounds = Math.max(2, Math.min(40, Math.round(400000 / size)));
    const times: number[] = [];
    let nodes = 0;
    let blocks = 0;
    for (let k = 0; k < rounds; k++) {
      const round = ++version;
      const set = new Set<number>();
      if (size === n) for (let i = 0; i < n; i++) set.add(i);
      else while (set.size < size) set.add(Math.floor(r() * n));
      const idx = sortIdx([...set]);
      const ops: BatchOp[] = idx.map((i) => ({ key: ks.keyAt(i), value: i + n * round }));
      const t1 = now();
      const res = trie.applyBatch(root, ops);
      times.push(now() - t1);
      if (res.updated !== ops.length || res.replaced.length !== ops.length) throw new Error(`batch updated ${res.updated} of ${ops.length}`);
      nodes += res.writtenNodes;
      blocks += res.writtenBlocks;
      root = res.root;
      store.release(res.stale);
    }
    times.sort((a, b) => a - b);
    upd.set(size, {
      median: (size / times[times.length >> 1]!) * 1000,
      best: (size / times[0]!) * 1000,
      nodes: nodes / rounds,
      blocks: blocks / rounds,
    });
  }

  // Single inserts (batches of one): new keys (an existing key plus one byte).
  const ins = Math.min(20000, n);
  const extra: Uint8Array[] = [];
  for (let i = 0; i < ins; i++) {
    const k = ks.keyAt(Math.floor(r() * n));
    const e = new Uint8Array(k.length + 1);
    e.set(k, 0);
    e[k.length] = 0x2a;
    extra.push(e);
  }
  const extraBase = 2 ** 40;
  const trie2 = new HBTrie({
    store,
    keyReader: (v) => (v >= extraBase ? extra[v - extraBase]! : ks.keyAt(v % n)),
    chunkSize: CHUNK,
    cacheBytes: CACHE_BYTES,
    checksum,
  });
  check(trie2.core, root); // warm trie2's cache
  for (let i = 0; i < n; i += 7) sink += trie2.find(root, ks.keyAt(i)) ?? 0; // and its search arrays
  tb = now();
  let r2 = root;
  for (let i = 0; i < ins; i++) {
    const res = trie2.put(r2, extra[i]!, extraBase + i);
    r2 = res.root;
    store.release(res.stale);
  }
  const insertUs = ((now() - tb) * 1e3) / ins;
  if (sink === -1) console.log(sink);

  const row: Row = {
    set: name,
    keys: n,
    keyLen,
    trieBytes: st.bytes,
    trieHeight: st.height,
    trieMean: st.meanDepth,
    btreeBytes: bst.bytes,
    btreeHeight: bst.height,
    getNs: Math.min(...getRuns),
    findNs: Math.min(...findRuns),
    insertUs,
    buildUps: (n / buildMs) * 1000,
    upd,
  };
  console.error(
    `  ${name}: ${n} keys; trie ${mib(st.bytes)} MiB in ${st.nodes} nodes (${st.trieNodes} trie nodes, ${st.leaves} leaves); ` +
      `store wrote ${mib(store.bytesWritten)} MiB of blocks in all; ${((now() - t0) / 1000).toFixed(1)} s`,
  );
  return row;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

function main(): void {
  console.log(
    `HB+-trie benchmark: ${N} keys per set, chunk ${CHUNK} B, block ${BLOCK} B, build batches of ${BATCH}, cache ${CACHE_BYTES >> 20} MiB, checksum ${CHECKSUM === 'native' ? crcImplementation : 'javascript'}, node ${process.version}, ${new Date().toISOString()}`,
  );
  const rows: Row[] = [];
  for (const s of SETS) rows.push(runSet(s));
  const head = ['set', 'keys', 'key B', 'trie MiB', 'B+tree MiB', 'ratio', 'trie h', 'mean', 'B+ h', 'get ns', 'find ns', 'put µs', 'build/s'];
  const w = [8, 8, 6, 9, 10, 7, 6, 5, 5, 7, 7, 7, 8];
  console.log(head.map((h, i) => pad(h, w[i]!)).join(' '));
  for (const r of rows) {
    const cells = [
      r.set,
      String(r.keys),
      r.keyLen.toFixed(0),
      mib(r.trieBytes),
      mib(r.btreeBytes),
      `1/${(r.btreeBytes / r.trieBytes).toFixed(1)}`,
      String(r.trieHeight),
      r.trieMean.toFixed(2),
      String(r.btreeHeight),
      r.getNs.toFixed(0),
      r.findNs.toFixed(0),
      r.insertUs.toFixed(1),
      `${(r.buildUps / 1e6).toFixed(2)}M`,
    ];
    console.log(cells.map((c, i) => pad(c, w[i]!)).join(' '));
  }
  const sizes = UPDATE_BATCHES.filter((b) => b <= N);
  const label = (b: number): string => (b >= 1e6 && b % 1e6 === 0 ? `${b / 1e6}M` : b >= 1000 && b % 1000 === 0 ? `${b / 1e3}k` : String(b));
  console.log('\nbatch updates: median upd/s (best), nodes and KiB written per batch');
  console.log([pad('set', 8)].concat(sizes.map((b) => pad(`${label(b)} per batch`, 30))).join(' '));
  const M = (x: number): string => `${(x / 1e6).toFixed(2)}M`;
  for (const r of rows) {
    const cells = sizes.map((b) => {
      const u = r.upd.get(b);
      return u === undefined ? '-' : `${M(u.median)} (${M(u.best)}) ${u.nodes.toFixed(0)} n ${((u.blocks * BLOCK) / 1024).toFixed(0)} KiB`;
    });
    console.log([pad(r.set, 8)].concat(cells.map((c) => pad(c, 30))).join(' '));
  }
  console.log(
    [
      '',
      'trie/B+tree MiB: live bytes (serialized sizes of the nodes reachable from the final root); ratio = trie / B+-tree.',
      'trie h, B+ h: most nodes read from the root to a value (for the trie over all its trie levels); mean: nodes read per lookup on average.',
      'get: warm lookup confirmed through the KeyReader; find: warm candidate lookup (no key read); best of 3 passes over 500k random keys.',
      'put: one new key per batch (nodes serialized, checksummed and written), mean over 20k; build/s: keys/s building the trie in sorted',
      `batches of ${BATCH}. Batch updates: one sorted batch of that many random updates of existing keys; updates/s of the median and of`,
      'the best batch (2 to 40 batches per size), nodes (n) and blocks (KiB) each batch wrote, on average.',
    ].join('\n'),
  );
}

main();
