/**
 * Walks every node reachable from a root: live-size accounting, height, and a structural check
 * (for tests, benchmarks and the engine's `check` command). Iterative, so deep tries are fine.
 */

import type { Core } from './core.js';
import { corrupt } from './errors.js';
import { compareKeys, encodeChunks } from './keys.js';
import { type BNode, isTrieAt, ptrAt } from './node.js';

export interface TrieStats {
  /** B+-tree nodes (leaf + internal) reachable from the root. */
  nodes: number;
  /** Prefix pieces (external skipped prefixes). */
  pieces: number;
  /** Live bytes: sizes of all reachable nodes and pieces. */
  bytes: number;
  /** Values (keys) stored. */
  values: number;
  /** Trie nodes (B+-trees), the top-level one included. */
  trieNodes: number;
  leaves: number;
  internals: number;
  /** Largest number of nodes read from the root to a value (prefix pieces not counted). */
  height: number;
  /** Mean number of nodes read from the root to a value. */
  meanDepth: number;
  /** Largest number of trie nodes on a root-to-value path. */
  trieHeight: number;
}

export interface CheckOptions {
  /** Also read every key through the KeyReader and check it against its path and the order. */
  keys?: boolean;
}

interface Frame {
  addr: number;
  /** Trie node root: expected start chunk position. -1 for a non-root B+-tree node. */
  start: number;
  /** Trie level of the B+-tree this node belongs to. */
  level: number;
  /** Encoded chunks [0, level) on the path (only with keys checking). */
  path: Uint8Array | null;
  /** Exact smallest chunk expected (internal parent's key), and exclusive upper bound. */
  min: Uint8Array | null;
  max: Uint8Array | null;
  depth: number;
  trieDepth: number;
  btDepth: number;
  /** Leaf depth of the B+-tree this node belongs to (shared by its nodes), for the balance check. */
  leafDepth: { d: number };
}

function cmpBytes(a: Uint8Array, ao: number, b: Uint8Array, bo: number, n: number): number {
  for (let i = 0; i < n; i++) {
    const d = a[ao + i]! - b[bo + i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** Every reachable node and prefix piece: address -> size. */
export function collectNodes(core: Core, root: number | null): Map<number, number> {
  const out = new Map<number, number>();
  if (root === null) return out;
  const stack = [root];
  while (stack.length > 0) {
    const addr = stack.pop()!;
    const node = core.load(addr);
    out.set(addr, node.size);
    if (node.pieces !== null) for (let i = 0; i < node.pieces.length; i += 2) out.set(node.pieces[i]!, node.pieces[i + 1]!);
    for (let i = 0; i < node.n; i++) {
      if (!node.leaf || isTrieAt(node, i)) stack.push(ptrAt(node, i));
    }
  }
  return out;
}

/**
 * Walks the trie in key order, checking its invariants, and returns its statistics. Throws a
 * CORRUPT HBTrieError naming the node on the first violation (and on any unreadable node).
 */
export function check(core: Core, root: number | null, opts: CheckOptions = {}): TrieStats {
  const C = core.C;
  const withKeys = opts.keys === true;
  const st: TrieStats = { nodes: 0, pieces: 0, bytes: 0, values: 0, trieNodes: 0, leaves: 0, internals: 0, height: 0, meanDepth: 0, trieHeight: 0 };
  if (root === null) return st;
  let depthSum = 0;
  let prevKey: Uint8Array | null = null;
  const stack: Frame[] = [
    { addr: root, start: 0, level: 0, path: withKeys ? new Uint8Array(0) : null, min: null, max: null, depth: 1, trieDepth: 1, btDepth: 1, leafDepth: { d: -1 } },
  ];
  while (stack.length > 0) {
    const f = stack.pop()!;
    if (f.start === -2) {
      // A value (pseudo-frame), visited in key order.
      st.values++;
      depthSum += f.depth;
      if (f.depth > st.height) st.height = f.depth;
      if (withKeys) {
        const key = core.readKey(f.addr);
        const enc = encodeChunks(key, 0, f.level + 1, C);
        const want = f.path!;
        if (enc.length !== want.length || cmpBytes(enc, 0, want, 0, want.length) !== 0) {
          throw corrupt(f.addr, `the key read for value ${f.addr} does not match its path in the trie`);
        }
        if (prevKey !== null && compareKeys(prevKey, key) >= 0) throw corrupt(f.addr, `keys out of order at value ${f.addr}`);
        prevKey = key;
      }
      continue;
    }
    const node: BNode = core.load(f.addr);
    const a = f.addr;
    st.nodes++;
    st.bytes += node.size;
    let level = f.level;
    let path = f.path;
    if (f.start >= 0) {
      // Root of a trie node.
      if (!node.isRoot) throw corrupt(a, 'trie node root has no trie header');
      st.trieNodes++;
      if (f.trieDepth > st.trieHeight) st.trieHeight = f.trieDepth;
      level = node.level;
      if (level - node.prefixLen !== f.start) {
        throw corrupt(a, `trie node starts at chunk ${level - node.prefixLen}, expected ${f.start}`);
      }
      for (let p = 0; p < node.prefixLen; p++) {
        if (node.prefix[p * C + C - 1] !== C) throw corrupt(a, `skipped prefix chunk ${p} is a final chunk`);
      }
      const top = f.trieDepth === 1;
      if (node.leaf ? node.n < (top ? 1 : 2) : node.n < 2) throw corrupt(a, `trie node holds too few entries (${node.n})`);
      if (node.pieces !== null) {
        for (let i = 0; i < node.pieces.length; i += 2) {
          st.pieces++;
          st.bytes += node.pieces[i + 1]!;
        }
      }
      if (path !== null) {
        const np = new Uint8Array(path.length + node.prefix.length);
        np.set(path, 0);
        np.set(node.prefix, path.length);
        path = np;
      }
    } else if (node.isRoot) {
      throw corrupt(a, 'B+-tree node below the root carries a trie header');
    }
    if (node.n < 1) throw corrupt(a, 'empty node');
    if (node.size > core.blockSize) throw corrupt(a, `node of ${node.size} bytes is larger than a block`);
    const keys = node.u8;
    const ko = node.ko;
    for (let i = 1; i < node.n; i++) {
      if (cmpBytes(keys, ko + (i - 1) * C, keys, ko + i * C, C) >= 0) throw corrupt(a, `chunks not ascending at entry ${i}`);
    }
    if (f.min !== null && cmpBytes(keys, ko, f.min, 0, C) !== 0) throw corrupt(a, 'first chunk differs from the parent key');
    if (f.max !== null && cmpBytes(keys, ko + (node.n - 1) * C, f.max, 0, C) >= 0) throw corrupt(a, 'last chunk not below the next parent key');
    const leafDepth = f.start >= 0 ? { d: -1 } : f.leafDepth;
    const btDepth = f.start >= 0 ? 1 : f.btDepth;
    if (node.leaf) {
      st.leaves++;
      if (leafDepth.d < 0) leafDepth.d = btDepth;
      else if (leafDepth.d !== btDepth) throw corrupt(a, 'B+-tree leaves at different depths');
    } else {
      st.internals++;
    }
    // Children pushed in reverse so they pop in key order.
    for (let i = node.n - 1; i >= 0; i--) {
      // A copy: frames outlive this node's memory (later loads may reuse it; see cache.ts).
      const chunk = keys.slice(ko + i * C, ko + i * C + C);
      if (!node.leaf) {
        stack.push({
          addr: ptrAt(node, i),
          start: -1,
          level,
          path,
          min: chunk,
          max: i + 1 < node.n ? keys.slice(ko + (i + 1) * C, ko + (i + 2) * C) : f.max,
          depth: f.depth + 1,
          trieDepth: f.trieDepth,
          btDepth: btDepth + 1,
          leafDepth,
        });
      } else if (isTrieAt(node, i)) {
        if (chunk[C - 1] !== C) throw corrupt(a, `sub-trie entry ${i} has a final chunk`);
        let sub: Uint8Array | null = null;
        if (path !== null) {
          sub = new Uint8Array(path.length + C);
          sub.set(path, 0);
          sub.set(chunk, path.length);
        }
        stack.push({
          addr: ptrAt(node, i),
          start: level + 1,
          level: level + 1,
          path: sub,
          min: null,
          max: null,
          depth: f.depth + 1,
          trieDepth: f.trieDepth + 1,
          btDepth: 1,
          leafDepth: { d: -1 },
        });
      } else {
        // A value: a pseudo-frame, so that it is visited in key order.
        stack.push({
          addr: ptrAt(node, i),
          start: -2,
          level,
          path: path === null ? null : concat(path, chunk),
          min: null,
          max: null,
          depth: f.depth,
          trieDepth: f.trieDepth,
          btDepth,
          leafDepth,
        });
      }
    }
  }
  st.meanDepth = st.values > 0 ? depthSum / st.values : 0;
  return st;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
