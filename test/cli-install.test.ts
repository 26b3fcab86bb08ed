import test from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers/tmp.js';

const root = join(import.meta.dirname, '..');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(cmd, args, { cwd: root, encoding: 'utf8', env: { ...process.env, ...env } });
}

test('install without a C compiler succeeds, says so once, and names the fallback', (t) => {
  const r = run('node', ['scripts/build-native.mjs'], { CC: '/nonexistent/cc' });
  t.is(r.status, 0);
  const lines = (r.stdout + r.stderr).split('\n').filter((l) => l.includes('forestfs:'));
  t.is(lines.length, 1);
  t.regex(lines[0]!, /not built \(no C compiler.*node-fs backend will be used/);
});

test('`npm run build` (strict) fails without a C compiler', (t) => {
  const r = run('node', ['scripts/build-native.mjs', '--strict'], { CC: '/nonexistent/cc' });
  t.is(r.status, 1);
});

test('without the native library, auto falls back to node-fs', (t) => {
  const r = run('node', ['--import', 'tsx', '-e', "import('./src/io/index.ts').then(m => console.log(m.resolveAuto().backend, '|', m.nativeUnavailableReason()))"], { FORESTFS_NATIVE_LIB: '/nonexistent/libforestfs.so' });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^node-fs \| .*was not built/);
});

test('forestfs info prints the geometry; bad input is a clear error with a non-zero exit', (t) => {
  const img = join(tempDir(t), 'x.img');
  closeSync(openSync(img, 'w'));
  truncateSync(img, 8 << 20);
  const cli = ['--import', 'tsx', 'src/cli.ts'];
  const ok = run('node', [...cli, 'info', img, '--json']);
  t.is(ok.status, 0, ok.stderr);
  const info = JSON.parse(ok.stdout);
  t.is(info.capacity, 8 << 20);
  t.is(info.blockSize, 4096);
  const missing = run('node', [...cli, 'info', join(img, '..', 'missing.img')]);
  t.is(missing.status, 1);
  t.regex(missing.stderr, /forestfs: cannot open .* \[NOT_FOUND\]/);
  const bad = run('node', [...cli, 'info', img, '--backend', 'floppy']);
  t.not(bad.status, 0);
  t.regex(bad.stderr, /choose one of auto, uring, psync, .*node-fs, memory/);
  const help = run('node', [...cli, 'info', '--help']);
  t.regex(help.stdout, /Example:/);
});

test('forestfs stats and compact work on a store image; compact frees its stale space', async (t) => {
  const img = join(tempDir(t), 'c.forest');
  const { open } = await import('../src/index.js');
  const db = await open(img, { size: '32MiB' });
  const s = db.store('x');
  for (let r = 0; r < 4; r++) await Promise.all(Array.from({ length: 2000 }, (_, i) => s.put(`k${i}`, { r, i })));
  await db.close();
  const cli = ['--import', 'tsx', 'src/cli.ts'];
  const before = JSON.parse(run('node', [...cli, 'stats', img, '--json']).stdout);
  t.is(before.records, 2000);
  t.deepEqual(before.stores, ['default', 'x']);
  const c = run('node', [...cli, 'compact', img, '--quiet']);
  t.is(c.status, 0, c.stderr);
  t.regex(c.stdout, /compacted 2000 records/);
  const after = JSON.parse(run('node', [...cli, 'stats', img, '--json']).stdout);
  t.true(after.usedBytes < before.usedBytes);
  t.is(after.records, 2000);
  const bad = run('node', [...cli, 'compact', join(tempDir(t), 'missing.forest')]);
  t.not(bad.status, 0);
});
