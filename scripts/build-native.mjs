#!/usr/bin/env node
// Builds native/build/libforestfs.so with the system C compiler.
// Runs at `npm install`. Where there is no compiler or no Linux, install still succeeds:
// it says so once and ForestFS falls back to the pure-Node `node-fs` backend.
// `--strict` (used by `npm run build` and CI) turns a failed build into a failed command.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const strict = process.argv.includes('--strict');
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');

function giveUp(why) {
  const msg = `forestfs: native I/O library not built (${why}); the node-fs backend will be used.`;
  if (strict) {
    console.error(msg);
    process.exit(1);
  }
  console.warn(msg);
  process.exit(0);
}

if (process.platform !== 'linux') giveUp(`platform ${process.platform} is not Linux`);
if (!existsSync(join(nativeDir, 'Makefile'))) giveUp('native sources are missing');
const make = spawnSync('make', ['--version'], { encoding: 'utf8' });
if (make.error || make.status !== 0) giveUp('`make` is not installed');
const cc = process.env.CC || 'cc';
const probe = spawnSync(cc, ['--version'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0) giveUp(`no C compiler (\`${cc}\`)`);

const r = spawnSync('make', ['-C', nativeDir, '--no-print-directory', `CC=${cc}`], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'pipe'],
});
if (r.status !== 0) {
  process.stderr.write(r.stdout + r.stderr);
  giveUp(`the C build failed with status ${r.status}`);
}
