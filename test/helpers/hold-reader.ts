// A read-only reader in its own process, for engine-multiprocess: opens the image named on the
// command line, prints "open <value of key 'k0'>", and then keeps its view until it is killed
// (or its stdin closes).
import { open } from '../../src/index.js';

const db = await open(process.argv[2]!, { readOnly: true });
process.stdout.write(`open ${JSON.stringify(db.store().get('k0'))}\n`);
process.stdin.resume();
process.stdin.on('end', () => void db.close().then(() => process.exit(0)));
