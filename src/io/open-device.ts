import { realpathSync, statSync } from 'node:fs';
import { ForestError } from '../errors.js';
import { MemoryDevice } from './memory-device.js';
import { NativeDevice, type NativeBackendName } from './native-device.js';
import { nativeUnavailableReason } from './native-lib.js';
import { NodeFsDevice } from './node-fs-device.js';
import { parseSize } from './size.js';
import type { BackendName, BlockDevice } from './types.js';

export type BackendChoice = 'auto' | 'uring' | 'psync' | 'nvmed' | 'uring-cmd' | 'node-fs' | 'memory';

export const BACKENDS: readonly BackendChoice[] = ['auto', 'uring', 'psync', 'nvmed', 'uring-cmd', 'node-fs', 'memory'];

/** The native library's backends (native/ffs.c). */
const NATIVE_BACKENDS: readonly NativeBackendName[] = ['uring', 'psync', 'nvmed', 'uring-cmd'];

function isNative(b: string): b is NativeBackendName {
  return (NATIVE_BACKENDS as readonly string[]).includes(b);
}

/** /dev/nvmedN: a controller bound to the nvmed driver (kmod/): user-space NVMe queues. */
const NVMED_PATH = /^\/dev\/nvmed\d+$/;
/** /dev/ngXnY: the NVMe generic character device of a namespace (io_uring passthrough). */
const NVME_GENERIC_PATH = /^\/dev\/ng\d+n\d+$/;

/** Why a user-space NVMe backend cannot be used here (for error messages). */
function nvmeBackendMissing(backend: 'nvmed' | 'uring-cmd'): string {
  const lib = nativeUnavailableReason();
  if (lib) return lib;
  return backend === 'nvmed'
    ? 'the nvmed kernel driver is not loaded (no /sys/module/nvmed and no /dev/nvmedN; see kmod/README.md)'
    : 'this kernel has no io_uring NVMe passthrough (IORING_SETUP_SQE128/CQE32, Linux 5.19 or later)';
}

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
 * Which backend `auto` picks for a path: `nvmed` for /dev/nvmedN and `uring-cmd` for an
 * NVMe generic character device /dev/ngXnY (the only backends that can drive them); else
 * io_uring where the kernel has it, else psync (both need the native library), else the
 * pure-Node backend. The reason is for messages.
 */
export function resolveAuto(path?: string): { backend: BackendName; reason: string } {
  const real = path === undefined ? undefined : canonical(path);
  if (real !== undefined && NVMED_PATH.test(real)) {
    return { backend: 'nvmed', reason: `${path} is an nvmed device (user-space NVMe queues)` };
  }
  if (real !== undefined && NVME_GENERIC_PATH.test(real)) {
    return { backend: 'uring-cmd', reason: `${path} is an NVMe generic character device (io_uring passthrough)` };
  }
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
  const backend: string = choice === 'auto' ? resolveAuto(path).backend : choice;
  if (createSize !== undefined && createSize < 4096) {
    throw new ForestError('INVALID_ARGUMENT', `size ${createSize} is smaller than one 4096-byte block`);
  }
  if (backend === 'node-fs') {
    if (isCharDevice(path)) {
      throw new ForestError('UNSUPPORTED', `${path} is a character device; only the nvmed (/dev/nvmedN) and uring-cmd (/dev/ngXnY) backends open one (${nativeUnavailableReason() || 'choose one of them'})`);
    }
    if (isBlockDevice(path)) {
      throw new ForestError('UNSUPPORTED', `${path} is a block device; the node-fs backend opens image files only (${nativeUnavailableReason() || 'choose uring or psync'})`);
    }
    return NodeFsDevice.open(path, {
      readOnly: opts.readOnly ?? false,
      noLock: opts.noLock ?? false,
      ...(createSize !== undefined && { createSize }),
    });
  }
  if (!isNative(backend)) throw new ForestError('INVALID_ARGUMENT', `unknown backend '${backend}'`);
  if ((backend === 'nvmed' || backend === 'uring-cmd') && !NativeDevice.available(backend)) {
    throw new ForestError('BACKEND_UNAVAILABLE', `cannot open ${path} with backend '${backend}': ${nvmeBackendMissing(backend)}`);
  }
  return NativeDevice.open(backend, path, {
    readOnly: opts.readOnly ?? false,
    noLock: opts.noLock ?? false,
    queueDepth: opts.queueDepth ?? 64,
    ...(createSize !== undefined && { createSize }),
  });
}

/** The path with symbolic links resolved (the path itself when that fails). */
function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function isCharDevice(path: string): boolean {
  try {
    return statSync(path).isCharacterDevice();
  } catch {
    return false;
  }
}

function isBlockDevice(path: string): boolean {
  try {
    return statSync(path).isBlockDevice();
  } catch {
    return false;
  }
}
