import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';

/** A fresh directory removed when the test ends. On the same file system as /tmp (ext4 here, so O_DIRECT works). */
export function tempDir(t: ExecutionContext, prefix = 'forestfs-'): string {
  const dir = mkdtempSync(join(process.env.FORESTFS_TEST_DIR ?? tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
