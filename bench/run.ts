// Entry point of the ForestFS benchmark suite: `npx tsx bench/run.ts --help`.
import { mkdirSync, writeFileSync, readdirSync, rmdirSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import os from 'node:os';
import { HELP, parseArgs, WORKLOADS, type Config } from './suite/config.js';
import { loadRegistry, ALL_STORE_NAMES } from './suite/adapters/index.js';
import { Runner } from './suite/runner.js';
import { machineInfo, packageVersion, REPO_ROOT } from './suite/sysinfo.js';
import { renderText, summarize, type BenchDoc } from './suite/report.js';

const log = (msg: string): void => {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);
};

function commandLine(): string {
  const args = process.argv.slice(2).map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`));
  return ['npx tsx bench/run.ts', ...args].join(' ');
}

function settingsOf(c: Config): Record<string, unknown> {
  return { ...c, workloads: [...c.workloads], tmp: relative(REPO_ROOT, c.tmp) || '.' };
}

async function main(): Promise<number> {
  let cfg: Config | 'help';
  try {
    cfg = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 2;
  }
  if (cfg === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const c = cfg;
  const started = new Date();
  const loadAvgStart = os.loadavg();
  const t0 = process.hrtime.bigint();

  const reg = await loadRegistry();
  if (reg.skipped) log(reg.skipped);
  let factories = reg.factories;
  if (c.only) {
    for (const s of c.only) {
      if (!(ALL_STORE_NAMES as readonly string[]).includes(s)) {
        process.stderr.write(`unknown store ${s}; known: ${ALL_STORE_NAMES.join(', ')}\n`);
        return 2;
      }
    }
    if (c.only.includes('forestfs') && reg.skipped) log('--only forestfs requested but ForestFS is not available; it is skipped.');
    factories = factories.filter((f) => c.only!.includes(f.store));
  }
  if (factories.length === 0) {
    log('no store to run.');
    return 1;
  }
  log(`stores: ${factories.map((f) => f.store).join(', ')}; modes: ${c.modes.join(', ')}; workloads: ${WORKLOADS.filter((w) => c.workloads.has(w)).join(', ')}; ${c.reps} repetition(s)`);

  mkdirSync(c.tmp, { recursive: true });
  const runner = new Runner(c, factories, log);
  const cleanup = (): void => {
    runner.cleanup();
    try {
      if (readdirSync(c.tmp).length === 0) rmdirSync(c.tmp);
    } catch {
      /* ignore */
    }
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    log(`${sig}: removing ${runner.scratchDir}`);
    cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let out;
  try {
    out = await runner.run();
  } finally {
    cleanup();
  }

  const doc: BenchDoc = {
    schema: 'forestfs-bench/1',
    command: commandLine(),
    argv: process.argv,
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    wallSeconds: Number(process.hrtime.bigint() - t0) / 1e9,
    machine: { ...machineInfo(REPO_ROOT), loadAvgStart, loadAvgEnd: os.loadavg() },
    packages: Object.fromEntries(
      [...factories.map((f) => [f.packageName, f.packageVersion] as const), ['tsx', packageVersion('tsx')] as const],
    ),
    settings: settingsOf(c),
    forestfs: { present: factories.some((f) => f.store === 'forestfs'), skipped: reg.skipped },
    floorMethod: out.floorCompileNote,
    adapters: out.adapters,
    floors: out.floors,
    runs: out.runs,
  };
  const summary = summarize(doc);
  doc.summary = summary;
  process.stdout.write(renderText(doc, summary));
  process.stdout.write(`\nwall time: ${doc.wallSeconds.toFixed(1)} s\ncommand: ${doc.command}\n`);
  if (c.json) {
    mkdirSync(dirname(c.json), { recursive: true });
    writeFileSync(c.json, JSON.stringify(doc, null, 1) + '\n');
    log(`wrote ${c.json}`);
    log(`chart: npx tsx bench/chart.ts ${relative(process.cwd(), c.json)}`);
  }
  return summary.errors.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
