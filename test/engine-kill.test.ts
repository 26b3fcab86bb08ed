import test from 'ava';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { open, type Database } from './helpers/engine.js';
import { tempDir } from './helpers/tmp.js';

const ROUNDS = 20;

/** Starts the writer, kills it with SIGKILL after a random number of acknowledgements. */
function writeAndKill(path: string, start: number, killAfter: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'helpers', 'kill-writer.ts'), path, String(start)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let acked = start - 1;
    let seen = 0;
    let buf = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        const m = /^ack (\d+)$/.exec(l);
        if (m) {
          acked = Number(m[1]);
          if (++seen === killAfter) child.kill('SIGKILL');
        }
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(acked);
      else reject(new Error(`writer exited with ${code}: ${err}`));
    });
  });
}

test(`a writer killed with SIGKILL ${ROUNDS} times loses no acknowledged commit`, async (t) => {
  const path = join(tempDir(t), 'kill.forest');
  let next = 1;
  let seed = 7;
  let maxLockWait = 0;
  for (let round = 0; round < ROUNDS; round++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const acked = await writeAndKill(path, next, 5 + (seed % 200));
    // io_uring tears a dead process's ring down asynchronously; its in-flight requests hold
    // the file (and so the flock) for a moment after the process is gone.
    const t0 = Date.now();
    let db: Database | undefined;
    while (!db) {
      try {
        db = await open(path);
      } catch (e) {
        if ((e as { code?: string }).code !== 'LOCKED' || Date.now() - t0 > 5000) throw e;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    maxLockWait = Math.max(maxLockWait, Date.now() - t0);
    const s = db.store('kill');
    for (let n = 1; n <= acked; n++) {
      if (s.get(`n:${n}`) !== n) {
        t.fail(`round ${round}: acknowledged commit ${n} is missing (acked ${acked})`);
        await db.close();
        return;
      }
    }
    const last = s.get('last') as number;
    t.true(last >= acked, `round ${round}: last ${last} < acked ${acked}`);
    // What recovered past the acknowledged point must be whole commits.
    t.is(s.get(`n:${last}`), last);
    t.is(s.get(`n:${last + 1}`), undefined);
    next = last + 1;
    await db.close();
  }
  t.log(`${next - 1} commits over ${ROUNDS} kills; the lock outlived a killed writer by at most ${maxLockWait} ms`);
});
