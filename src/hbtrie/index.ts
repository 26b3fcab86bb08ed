/**
 * HB+-trie: the index of ForestFS. See docs/FORMAT-hbtrie.md for the on-disk format.
 */
export { HBTrie } from './trie.js';
export type { HBTrieOptions, KeyReader } from './core.js';
export type { BatchOp, BatchResult, StaleNode } from './batch.js';
export { Cursor, type RangeOptions } from './iterator.js';
export { MemoryNodeStore, type MemoryNodeStoreOptions, type NodeStore, type BlockWrite } from './store.js';
export { HBTrieError, type HBTrieErrorCode } from './errors.js';
export { check, collectNodes, type TrieStats, type CheckOptions } from './inspect.js';
export {
  MAX_KEY_LENGTH,
  MIN_CHUNK_SIZE,
  MAX_CHUNK_SIZE,
  DEFAULT_CHUNK_SIZE,
  compareKeys,
  encodeKey,
  chunkCount,
} from './keys.js';
export { crc32c, type Checksum } from './crc32c.js';
