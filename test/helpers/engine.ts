export { open, Database, Store, ForestError, MemoryDevice, FaultyDevice } from '../../src/index.js';
export { Prng } from '../../src/io/index.js';
