/**
 * ForestFS's public API.
 *
 *   const db = await open('data.forest', { size: '1GiB' });
 *   const users = db.store('users');
 *   await users.put('alice', { age: 31 });
 *   users.get('alice');            // { age: 31 }
 *   await db.close();
 */
import { Database, type OpenOptions } from './engine/index.js';
import type { BlockDevice } from './io/index.js';

export const VERSION = '0.1.0';

/**
 * Opens a store on an image file (created sparse with `options.size`, default 1 GiB, when
 * missing), a block device, `backend:path`, or a BlockDevice (tests: MemoryDevice,
 * FaultyDevice). A blank device is formatted; anything else that is not ForestFS is refused.
 */
export function open(target: string | BlockDevice, options: OpenOptions = {}): Promise<Database> {
  return Database.open(target, options);
}

export {
  Database, Store, StoreReader, Snapshot, Transaction, TxStore, MAX_KEY_LENGTH,
  type OpenOptions, type DatabaseStats, type Durability, type RangeOptions, type Key, type Value,
  type WriteOptions, type Entry, type Change, type ChangesOptions, type TxEntry,
} from './engine/index.js';
export { ForestError, type ForestErrorCode } from './errors.js';
export {
  openDevice, parseDeviceSpec, resolveAuto, nativeUnavailableReason, parseSize, BACKENDS,
  BufferPool, writeBlocks, DeviceBuffer, FaultyDevice, MemoryDevice, IoError,
  type BackendChoice, type BlockDevice, type Geometry, type IoCommand, type OpenDeviceOptions, type DirtyBlock,
} from './io/index.js';
