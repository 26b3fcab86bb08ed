import koffi, { type LibraryHandle } from 'koffi';

/**
 * flock(2) for the pure-Node backend, through the C library koffi can load without our own
 * native build. The kernel drops the lock when the process dies, so a crashed writer never
 * leaves a stale lock behind. Returns null where no C library can be loaded (Windows).
 */
type Flock = (fd: number, op: number) => number;

let flockFn: Flock | null | undefined;
let libcLib: LibraryHandle | null | undefined;

const LOCK_EX = 2;
const LOCK_NB = 4;

/** The C library, through koffi; null where none can be loaded (Windows). */
export function libc(): LibraryHandle | null {
  if (libcLib !== undefined) return libcLib;
  libcLib = null;
  const names = process.platform === 'darwin' ? ['libc.dylib', '/usr/lib/libSystem.B.dylib'] : ['libc.so.6', 'libc.so'];
  for (const name of names) {
    try {
      libcLib = koffi.load(name);
      break;
    } catch {
      // try the next name
    }
  }
  return libcLib;
}

function load(): Flock | null {
  if (flockFn !== undefined) return flockFn;
  flockFn = null;
  const lib = libc();
  if (lib) {
    const f = lib.func('int flock(int fd, int op)');
    flockFn = (fd, op) => f(fd, op) as number;
  }
  return flockFn;
}

/** 'locked' when taken, 'busy' when another process holds it, 'unsupported' otherwise. */
export function tryLockExclusive(fd: number): 'locked' | 'busy' | 'unsupported' {
  const f = load();
  if (!f) return 'unsupported';
  return f(fd, LOCK_EX | LOCK_NB) === 0 ? 'locked' : 'busy';
}
