import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Loop devices give tests a real raw block device (4 KiB logical sectors, direct I/O, as
 * on a 4Kn NVMe drive). They need root and util-linux; `loopUnavailable()` says why not.
 */
export function loopUnavailable(): string | null {
  if (process.platform !== 'linux') return `loop devices need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'attaching a loop device needs root (CI runs as root)';
  if (!existsSync('/dev/loop-control')) return 'this kernel has no /dev/loop-control';
  const r = spawnSync('losetup', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return '`losetup` (util-linux) is not installed';
  return null;
}

/** Attaches `image` with 4096-byte sectors and direct I/O; returns /dev/loopN. */
export function attachLoop(image: string): string {
  return execFileSync('losetup', ['--find', '--show', '--direct-io=on', '--sector-size', '4096', image], { encoding: 'utf8' }).trim();
}

export function detachLoop(dev: string): void {
  spawnSync('losetup', ['-d', dev]);
}
