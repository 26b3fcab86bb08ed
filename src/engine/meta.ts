/**
 * The checkpoint meta: written at every index flush, it names each store's index root and
 * carries the space accounting, so recovery starts from it and replays only what follows.
 *
 *   u32 version (2) · u32 nextStoreId · u64 lastSeq · u32 storeCount
 *   per store: u32 id · u32 nameLength · name (UTF-8) · u64 root + 1 (0: empty) · u64 keys
 *              · u64 tombstones
 *   u32 segmentCount · per segment: u64 live bytes · u64 stale bytes
 *   u64 tail (start of the oldest byte the log still needs)
 */
import { ForestError } from '../errors.js';
import { getU64, setU64 } from './format.js';

export interface StoreMeta {
  id: number;
  name: string;
  root: number | null;
  /** Entries in the index, deletions included (not counting the WAL). */
  keys: number;
  /** Index entries that are deletions (tombstones), kept for the changes feed. */
  tombstones: number;
}

export interface CheckpointMeta {
  nextStoreId: number;
  lastSeq: number;
  stores: StoreMeta[];
  live: Float64Array;
  stale: Float64Array;
  tail: number;
}

export function encodeMeta(m: CheckpointMeta): Uint8Array {
  const names = m.stores.map((s) => Buffer.from(s.name, 'utf8'));
  let size = 20 + 4 + m.live.length * 16 + 8;
  for (const n of names) size += 32 + n.length;
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  let o = 0;
  v.setUint32(o, 2, true); o += 4;
  v.setUint32(o, m.nextStoreId, true); o += 4;
  setU64(v, o, m.lastSeq); o += 8;
  v.setUint32(o, m.stores.length, true); o += 4;
  m.stores.forEach((s, i) => {
    v.setUint32(o, s.id, true); o += 4;
    v.setUint32(o, names[i]!.length, true); o += 4;
    b.set(names[i]!, o); o += names[i]!.length;
    setU64(v, o, s.root === null ? 0 : s.root + 1); o += 8;
    setU64(v, o, s.keys); o += 8;
    setU64(v, o, s.tombstones); o += 8;
  });
  v.setUint32(o, m.live.length, true); o += 4;
  for (let i = 0; i < m.live.length; i++) {
    setU64(v, o, Math.max(0, Math.round(m.live[i]!))); o += 8;
    setU64(v, o, Math.max(0, Math.round(m.stale[i]!))); o += 8;
  }
  setU64(v, o, m.tail);
  return b;
}

export function decodeMeta(b: Uint8Array, where: string): CheckpointMeta {
  try {
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let o = 0;
    if (v.getUint32(o, true) !== 2) throw new Error('unknown meta version');
    o += 4;
    const nextStoreId = v.getUint32(o, true); o += 4;
    const lastSeq = getU64(v, o); o += 8;
    const count = v.getUint32(o, true); o += 4;
    const stores: StoreMeta[] = [];
    for (let i = 0; i < count; i++) {
      const id = v.getUint32(o, true); o += 4;
      const len = v.getUint32(o, true); o += 4;
      const name = Buffer.from(b.subarray(o, o + len)).toString('utf8'); o += len;
      const root = getU64(v, o); o += 8;
      const keys = getU64(v, o); o += 8;
      const tombstones = getU64(v, o); o += 8;
      stores.push({ id, name, root: root === 0 ? null : root - 1, keys, tombstones });
    }
    const segs = v.getUint32(o, true); o += 4;
    const live = new Float64Array(segs);
    const stale = new Float64Array(segs);
    for (let i = 0; i < segs; i++) {
      live[i] = getU64(v, o); o += 8;
      stale[i] = getU64(v, o); o += 8;
    }
    const tail = getU64(v, o);
    return { nextStoreId, lastSeq, stores, live, stale, tail };
  } catch (e) {
    throw new ForestError('CORRUPT', `the checkpoint meta at ${where} cannot be read: ${(e as Error).message}`);
  }
}
