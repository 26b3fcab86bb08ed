// A ForestFS store in a scratch image file under .bench-tmp, loaded as the suite loads its data
// sets (batches of 1,000 puts, each batch awaited, in the given order), for the engine probes.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type Store } from '../src/index.js';
import { permutation, randomValues } from './suite/data.js';

export interface LoadedStore {
  db: Database;
  store: Store;
  /** Closes the database and deletes the scratch directory. */
  close(): Promise<void>;
}

export async function loadedStore(name: string, keys: readonly string[], values: readonly Uint8Array[], order: ArrayLike<number>): Promise<LoadedStore> {
  mkdirSync(join(process.cwd(), '.bench-tmp'), { recursive: true });
  const tmp = mkdtempSync(join(process.cwd(), '.bench-tmp', `${name}-`));
  try {
    const db = await open(join(tmp, 'f.forest'), { size: '8GiB', durability: 'relaxed' });
    const store = db.store('bench');
    for (let i = 0; i < order.length; i += 1000) {
      const p: Promise<number>[] = [];
      for (let j = i; j < Math.min(order.length, i + 1000); j++) p.push(store.put(keys[order[j]!]!, values[order[j]!]!));
      await Promise.all(p);
    }
    return {
      db,
      store,
      close: async () => {
        try {
          await db.close();
        } finally {
          rmSync(tmp, { recursive: true, force: true });
        }
      },
    };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * `keys` with the suite's values (100 bytes each, the suite's seed), loaded as the suite loads
 * its data sets: in the suite's random order, or in the order of `keys` (`inKeyOrder`).
 */
export async function suiteStore(name: string, keys: readonly string[], inKeyOrder = false): Promise<LoadedStore & { values: Buffer[]; order: Uint32Array }> {
  const n = keys.length;
  const values = randomValues(n, 100, 42, 1);
  const order = inKeyOrder ? Uint32Array.from({ length: n }, (_, i) => i) : permutation(n, 42, 2);
  return { ...(await loadedStore(name, keys, values, order)), values, order };
}
