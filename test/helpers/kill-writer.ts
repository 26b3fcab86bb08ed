/**
 * A child process for the SIGKILL test: writes commits to an image forever, printing
 * `ack N` after commit N is durable. Commit N puts key `n:N` = N and overwrites `last` = N.
 */
import { open } from '../../src/index.js';

const [path, startArg] = process.argv.slice(2);
const db = await open(path!, { size: '64MiB', walThreshold: 50 });
const store = db.store('kill');
let n = Number(startArg ?? 1);
for (;;) {
  const group = [store.put(`n:${n}`, n), store.put('last', n), store.put(`pad:${n % 97}`, 'y'.repeat(n % 1500))];
  await Promise.all(group);
  process.stdout.write(`ack ${n}\n`);
  n++;
}
