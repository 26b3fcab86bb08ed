/**
 * `forestfs`: the operator's command line. It uses only the public API (./index.js).
 */
import { existsSync } from 'node:fs';
import { SingleBar, Presets } from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { BACKENDS, ForestError, nativeUnavailableReason, open, openDevice, parseDeviceSpec, resolveAuto, VERSION, type BackendChoice } from './index.js';

const program = new Command();
program
  .name('forestfs')
  .description('ForestFS: an embedded key-value store on raw NVMe, block devices and image files.')
  .version(VERSION)
  .showHelpAfterError('(run with --help for usage)');

function backendOption(value: string): BackendChoice {
  if (!(BACKENDS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`choose one of ${BACKENDS.join(', ')}`);
  }
  return value as BackendChoice;
}

program
  .command('info')
  .description('Open a device or image read-only and print the backend and geometry it reports.')
  .argument('<path>', 'image file, block device (/dev/loop0, /dev/nvme0n1) or backend:path')
  .option('-b, --backend <name>', `I/O backend (${BACKENDS.join(', ')})`, backendOption)
  .option('--json', 'print JSON')
  .addHelpText('after', '\nExample:\n  forestfs info /dev/loop0\n  forestfs info psync:data.forest --json')
  .action(async (path: string, opts: { backend?: BackendChoice; json?: boolean }) => {
    const dev = openDevice(path, { readOnly: true, ...(opts.backend && { backend: opts.backend }) });
    try {
      const info = { path: dev.path, backend: dev.backend, ...dev.geometry };
      if (opts.json) {
        console.log(JSON.stringify(info, null, 2));
      } else {
        const g = dev.geometry;
        console.log(`${dev.path}
  backend          ${dev.backend}
  capacity         ${g.capacity} bytes (${(g.capacity / 2 ** 30).toFixed(2)} GiB)
  block size       ${g.blockSize} bytes (kernel alignment ${g.dioAlign})
  max transfer     ${g.maxTransfer} bytes
  queue depth      ${g.queueDepth}
  write cache      ${g.volatileCache === null ? 'unknown (always flushed)' : g.volatileCache ? 'volatile (flushed at commit)' : 'none'}
  atomic write     ${g.atomicWrite ? `${g.atomicWrite} bytes` : 'unknown'}
  kind             ${g.blockDevice ? 'block device' : 'image file'}, ${g.direct ? 'direct I/O' : 'buffered'}${g.trim ? ', trim' : ''}`);
      }
    } finally {
      await dev.close();
    }
  });

program
  .command('backends')
  .description('List the I/O backends and which one `auto` picks on this machine.')
  .action(() => {
    const auto = resolveAuto();
    const why = nativeUnavailableReason();
    console.log(`backends: ${BACKENDS.join(', ')} (name one with -b, or as a path prefix: uring:/dev/loop0)`);
    console.log(`auto → ${auto.backend} (${auto.reason})`);
    if (why) console.log(`native backends unavailable: ${why}`);
  });

const mib = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;

program
  .command('stats')
  .description('Open a store read-only (safe while a writer runs) and print its statistics.')
  .argument('<path>', 'image file, block device or backend:path')
  .option('-b, --backend <name>', `I/O backend (${BACKENDS.join(', ')})`, backendOption)
  .option('--json', 'print JSON')
  .action(async (path: string, opts: { backend?: BackendChoice; json?: boolean }) => {
    const db = await open(path, { readOnly: true, ...(opts.backend && { backend: opts.backend }) });
    try {
      const st = db.stats();
      if (opts.json) {
        console.log(JSON.stringify({ ...st, stores: db.stores() }, null, 2));
        return;
      }
      console.log(`${st.path} (${st.backend})
  stores           ${db.stores().join(', ')}
  records          ${st.records}   (WAL entries ${st.walEntries}, last sequence number ${st.lastSeq})
  live / stale     ${mib(st.liveBytes)} / ${mib(st.staleBytes)}   (stale is what compaction frees)
  device           ${mib(st.usedBytes)} used of ${mib(st.deviceBytes)}, ${mib(st.freeBytes)} free`);
    } finally {
      await db.close();
    }
  });

program
  .command('compact')
  .description('Copy the live data of a store forward and free the rest (the store must not be open elsewhere for writing).')
  .argument('<path>', 'image file, block device or backend:path')
  .option('-b, --backend <name>', `I/O backend (${BACKENDS.join(', ')})`, backendOption)
  .option('-q, --quiet', 'no progress bar')
  .addHelpText('after', '\nExample:\n  forestfs compact data.forest\n\nReaders in other processes should refresh (or reopen) afterwards: the space they read may be reused.')
  .action(async (path: string, opts: { backend?: BackendChoice; quiet?: boolean }) => {
    // Never create a store here: a typo must not become a fresh 1 GiB image.
    if (!existsSync(parseDeviceSpec(path).path)) throw new ForestError('NOT_FOUND', `${path}: no such file or device`);
    const db = await open(path, { ...(opts.backend && { backend: opts.backend }) });
    const bar = opts.quiet || !process.stderr.isTTY ? null : new SingleBar({ format: 'compacting {bar} {percentage}% | {value}/{total} records | {phase}', stream: process.stderr }, Presets.shades_classic);
    try {
      bar?.start(1, 0, { phase: 'copy' });
      const r = await db.compact({
        onProgress: (p) => {
          bar?.setTotal(Math.max(1, p.total));
          bar?.update(p.done, { phase: p.phase });
        },
      });
      bar?.stop();
      console.log(`compacted ${r.records} records in ${r.seconds.toFixed(2)} s: ${mib(r.usedBefore)} → ${mib(r.usedAfter)} used${r.reclaimed ? '' : ' (space freed once older snapshots close)'}`);
    } finally {
      bar?.stop();
      await db.close();
    }
  });

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof ForestError) {
    console.error(`forestfs: ${e.message} [${e.code}]`);
    process.exit(1);
  }
  throw e;
}
