import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';

/**
 * The native I/O library (native/build/libforestfs.so) bound with koffi. Loaded lazily:
 * where it was not built (no compiler, not Linux) `nativeLib()` returns null and says why
 * through `nativeUnavailableReason()`.
 */
export interface NativeLib {
  open(backend: string, path: string, flags: number, createSize: bigint, queueDepth: number, err: Uint8Array, errLen: number): bigint | null;
  geometry(dev: bigint, out: Uint8Array): number;
  alloc(dev: bigint, size: bigint): bigint | null;
  free(dev: bigint, p: bigint, size: bigint): void;
  submit(dev: bigint, cmds: Uint8Array, n: number): number;
  reap(dev: bigint, out: Uint8Array, max: number, minWait: number): number;
  outstanding(dev: bigint): number;
  notifyFd(dev: bigint): number;
  lastError(dev: bigint): string;
  backendAvailable(name: string): number;
  close(dev: bigint): void;
  view(address: bigint, length: number): ArrayBuffer;
}

export const ABI_VERSION = 1;
export const OPEN_READONLY = 1;
export const OPEN_CREATE = 2;
export const OPEN_NOLOCK = 4;
export const GEO_BLOCKDEV = 1;
export const GEO_DIRECT = 2;
export const GEO_TRIM = 4;
export const GEO_CREATED = 8;
export const GEO_READONLY = 16;
export const CMD_SIZE = 32;
export const CQE_SIZE = 16;
export const GEOMETRY_SIZE = 48;

let loaded: NativeLib | null | undefined;
let reason = '';
/** The koffi handle of the library once loaded (also when only its checksum functions bind). */
let handle: ReturnType<typeof koffi.load> | null = null;

function libraryPath(): string {
  if (process.env.FORESTFS_NATIVE_LIB) return process.env.FORESTFS_NATIVE_LIB;
  // src/io/ and dist/io/ are both two levels below the package root.
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'build', 'libforestfs.so');
}

export function nativeLib(): NativeLib | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.platform !== 'linux') {
    reason = `the native backends need Linux (this is ${process.platform})`;
    return null;
  }
  const path = libraryPath();
  if (!existsSync(path)) {
    reason = `${path} was not built (run \`npm run build\`; it needs a C compiler)`;
    return null;
  }
  try {
    const lib = koffi.load(path);
    handle = lib;
    const abi = lib.func('int ffs_abi_version(void)')() as number;
    if (abi !== ABI_VERSION) {
      reason = `${path} has ABI ${abi}, expected ${ABI_VERSION} (rebuild with \`npm run build\`)`;
      return null;
    }
    const f = (sig: string) => lib.func(sig);
    const open = f('void *ffs_open(const char *backend, const char *path, uint32_t flags, uint64_t create_size, uint32_t qd, _Out_ uint8_t *errbuf, uint32_t errlen)');
    const geometry = f('int ffs_geometry(void *dev, _Out_ uint8_t *out)');
    const alloc = f('void *ffs_alloc(void *dev, uint64_t size)');
    const free = f('void ffs_free(void *dev, void *p, uint64_t size)');
    const submit = f('int ffs_submit(void *dev, const uint8_t *cmds, uint32_t n)');
    const reap = f('int ffs_reap(void *dev, _Out_ uint8_t *out, uint32_t max, uint32_t min_wait)');
    const outstanding = f('uint32_t ffs_outstanding(void *dev)');
    const notifyFd = f('int ffs_notify_fd(void *dev)');
    const lastError = f('const char *ffs_last_error(void *dev)');
    const backendAvailable = f('int ffs_backend_available(const char *name)');
    const close = f('void ffs_close(void *dev)');
    loaded = {
      open: (b, p, fl, cs, qd, err, el) => open(b, p, fl, cs, qd, err, el) as bigint | null,
      geometry: (d, o) => geometry(d, o) as number,
      alloc: (d, s) => alloc(d, s) as bigint | null,
      free: (d, p, s) => void free(d, p, s),
      submit: (d, c, n) => submit(d, c, n) as number,
      reap: (d, o, m, w) => reap(d, o, m, w) as number,
      outstanding: (d) => outstanding(d) as number,
      notifyFd: (d) => notifyFd(d) as number,
      lastError: (d) => lastError(d) as string,
      backendAvailable: (n) => backendAvailable(n) as number,
      close: (d) => void close(d),
      view: (a, l) => koffi.view(a, l) as ArrayBuffer,
    };
  } catch (e) {
    reason = `${path} could not be loaded: ${(e as Error).message}`;
    loaded = null;
  }
  return loaded;
}

export function nativeUnavailableReason(): string {
  nativeLib();
  return reason;
}

/** CRC32C in the native library: `crc(seed, bytes, offset, length)`, and the batch form for records. */
export interface NativeCrc {
  crc32c(seed: number, buf: Uint8Array, offset: number, length: number): number;
  /** For each i: CRC32C of frame[spans[2i], +spans[2i+1]), stored little-endian right after. */
  records(frame: Uint8Array, spans: Uint32Array, count: number): void;
  hardware: boolean;
}

let crcLoaded: NativeCrc | null | undefined;

/**
 * The native CRC32C functions, or null when the library is missing, could not be loaded, or
 * predates them (an older build: the I/O functions still work). FORESTFS_NATIVE_CRC=0 turns
 * them off (the JavaScript implementation is used).
 */
export function nativeCrc(): NativeCrc | null {
  if (crcLoaded !== undefined) return crcLoaded;
  crcLoaded = null;
  if (process.env.FORESTFS_NATIVE_CRC === '0') return null;
  nativeLib();
  if (!handle) return null;
  try {
    const crc = handle.func('uint32_t ffs_crc32c(uint32_t seed, const uint8_t *buf, uint64_t offset, uint64_t len)');
    const records = handle.func('void ffs_crc32c_records(uint8_t *frame, const uint32_t *spans, uint32_t count)');
    const hw = handle.func('int ffs_crc32c_hw(void)');
    crcLoaded = {
      crc32c: crc as (seed: number, buf: Uint8Array, offset: number, length: number) => number,
      records: records as (frame: Uint8Array, spans: Uint32Array, count: number) => void,
      hardware: (hw() as number) === 1,
    };
  } catch {
    crcLoaded = null;
  }
  return crcLoaded;
}
