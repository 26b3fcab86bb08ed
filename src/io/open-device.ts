import { statSync } from 'node:fs';
import { ForestError } from '../errors.js';
import { MemoryDevice } from './memory-device.js';
import { NativeDevice } from './native-device.js';
import { nativeUnavailableReason } from './native-lib.js';
import { NodeFsDevice } from './node-fs-device.js';
import { parseSize } from './size.js';
import type { BackendName, BlockDevice } from './types.js';

export type BackendChoice = 'auto' | 'uring' | 'psync' | 'node-fs' | 'memory';

export const BACKENDS: readonly BackendChoice[] = ['auto', 'uring', 'psync', 'node-fs', 'memory'];

export interface OpenDeviceOptions {
  /** Overrides a `backend:` prefix in the path. Default 'auto'. */
  backend?: BackendChoice;
  /** Size of the image file to create when it does not exist (number or '1GiB'). */
  size?: number | string;
  readOnly?: boolean;
  /** Commands in flight at most (native backends). Default 64. */
  queueDepth?: number;
  /** Do not take the exclusive writer lock. */
  noLock?: boolean;
}

/** Splits 'uring:/dev/loop0' into backend and path; a path without a known prefix is auto. */
export function parseDeviceSpec(spec: string): { backend: BackendChoice; path: string } {
  const m = /^([a-z-]+):(.*)$/.exec(spec);
  if (m && (BACKENDS as readonly string[]).includes(m[1]!)) {
    return { backend: m[1] as BackendChoice, path: m[2]! };
  }
  return { backend: 'auto', path: spec };
}

/**
 * Which backend `auto` picks for a path: io_uring where the kernel has it, else psync
 * (both need the native library), else the pure-Node backend. The reason is for messages.
 */
export function resolveAuto(): { backend: BackendName; reason: string } {
  if (NativeDevice.available('uring')) return { backend: 'uring', reason: 'io_uring is available' };
  if (NativeDevice.available('psync')) return { backend: 'psync', reason: 'io_uring is unavailable (io_uring_setup failed)' };
  return { backend: 'node-fs', reason: nativeUnavailableReason() };
}

/**
 * Opens an image file (created sparse, mode 0600, when missing and a size is given), a
 * block device (/dev/loopN, /dev/nvmeXnY), `memory:` (size bytes in RAM) or `backend:path`.
 */
export function openDevice(spec: string, opts: OpenDeviceOptions = {}): BlockDevice {
  const parsed = parseDeviceSpec(spec);
  const choice = opts.backend ?? parsed.backend;
  const path = parsed.path;
  const createSize = opts.size === undefined ? undefined : parseSize(opts.size, 'size');
  if (!(BACKENDS as readonly string[]).includes(choice)) {
    throw new ForestError('INVALID_ARGUMENT', `unknown backend '${choice}' (choose one of ${BACKENDS.join(', ')})`);
  }
  if (choice === 'memory') {
    if (!createSize) throw new ForestError('INVALID_ARGUMENT', 'the memory backend needs a size');
    return new MemoryDevice(createSize, { readOnly: opts.readOnly ?? false }, `memory:${path}`);
  }
  if (path === '') throw new ForestError('INVALID_ARGUMENT', 'a path is needed');
  const backend = choice === 'auto' ? resolveAuto().backend : choice;
  if (createSize !== undefined && createSize < 4096) {
    throw new ForestError('INVALID_ARGUMENT', `size ${createSize} is smaller than one 4096-byte block`);
  }
  if (backend === 'node-fs') {
    if (isBlockDevice(path)) {
      throw new ForestError('UNSUPPORTED', `${path} is a block device; the node-fs backend opens image files only (${nativeUnavailableReason() || 'choose uring or psync'})`);
    }
    return NodeFsDevice.open(path, {
      readOnly: opts.readOnly ?? false,
      noLock: opts.noLock ?? false,
      ...(createSize !== undefined && { createSize }),
    });
  }
  return NativeDevice.open(backend as 'uring' | 'psync', path, {
    readOnly: opts.readOnly ?? false,
    noLock: opts.noLock ?? false,
    queueDepth: opts.queueDepth ?? 64,
    ...(createSize !== undefined && { createSize }),
  });
}

function isBlockDevice(path: string): boolean {
  try {
    return statSync(path).isBlockDevice();
  } catch {
    return false;
  }
}
