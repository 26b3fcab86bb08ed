import type { Key, Value } from '../../src/index.js';

/** A database, a snapshot or anything else whose stores can be scanned. */
export interface Scannable {
  store(name: string): { range(): Iterable<[Key, Value]> };
}

/** The reference: per store, a plain map from key (latin1 of its bytes) to a JSON-able value. */
export type Model = Map<string, Map<string, unknown>>;

export function cloneModel(m: Model): Model {
  return new Map([...m].map(([s, kv]) => [s, new Map(kv)]));
}

/** Every store of the model, scanned in full and probed by get, must equal the database. */
export function diffModel(db: Scannable, model: Model): string | null {
  for (const [name, kv] of model) {
    const store = db.store(name);
    const want = [...kv].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const got = [...store.range()].map(([k, v]) => [typeof k === 'string' ? Buffer.from(k, 'utf8').toString('latin1') : Buffer.from(k).toString('latin1'), v] as const);
    if (got.length !== want.length) return `${name}: ${got.length} entries, model has ${want.length}`;
    for (let i = 0; i < want.length; i++) {
      if (got[i]![0] !== want[i]![0]) return `${name}: entry ${i} is key ${JSON.stringify(got[i]![0])}, model has ${JSON.stringify(want[i]![0])}`;
      if (JSON.stringify(got[i]![1]) !== JSON.stringify(want[i]![1])) return `${name}: ${JSON.stringify(want[i]![0])} = ${JSON.stringify(got[i]![1])}, model has ${JSON.stringify(want[i]![1])}`;
    }
  }
  return null;
}
