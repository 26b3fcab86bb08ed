/**
 * `forestfs`: the operator's command line. It uses only the public API (./index.js).
 */
import { Command, InvalidArgumentError } from 'commander';
import { BACKENDS, ForestError, nativeUnavailableReason, openDevice, resolveAuto, VERSION, type BackendChoice } from './index.js';

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
    console.log(`auto → ${auto.backend} (${auto.reason})`);
    if (why) console.log(`native backends unavailable: ${why}`);
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
