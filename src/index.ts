/**
 * ForestFS's public API. The key-value store (open(), Store, Snapshot) arrives with the
 * storage engine; today the public surface is the device layer underneath it.
 */
export const VERSION = '0.1.0';
export { ForestError, type ForestErrorCode } from './errors.js';
export {
  openDevice, parseDeviceSpec, resolveAuto, nativeUnavailableReason, parseSize, BACKENDS,
  BufferPool, writeBlocks, DeviceBuffer, FaultyDevice, MemoryDevice, IoError,
  type BackendChoice, type BlockDevice, type Geometry, type IoCommand, type OpenDeviceOptions, type DirtyBlock,
} from './io/index.js';
