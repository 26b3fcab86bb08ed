// Reads a JSON file written by `bench/run.ts --json FILE` and writes
//   bench/results/chart.svg  ForestFS ÷ each peer per workload (or, while ForestFS is absent,
//                            each store's throughput normalised to lmdb), log scale, both modes
//   bench/results/table.md   the report as markdown
// Usage: npx tsx bench/chart.ts [FILE.json] [--out DIR]
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { METRICS, cfgKey, renderMarkdown, summarize, type BenchDoc, type Summary } from './suite/report.js';
import { REPO_ROOT } from './suite/sysinfo.js';
import type { Mode } from './suite/types.js';

const COLORS: Record<string, string> = {
  forestfs: '#d62728',
  lmdb: '#4e79a7',
  'classic-level': '#f28e2b',
  'better-sqlite3': '#59a14f',
};

interface Series {
  name: string;
  color: string;
  /** metric id -> ratio */
  values: Map<string, number>;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function seriesFor(s: Summary, mode: Mode, forest: boolean): Series[] {
  const stores = [...new Set(s.configs.filter((c) => c.mode === mode).map((c) => c.store))];
  const med = (store: string, m: string): number => s.medians[cfgKey(store, mode)]?.[m] ?? NaN;
  const out: Series[] = [];
  const chartMetrics = METRICS.filter((m) => m.chart);
  if (forest) {
    for (const peer of stores.filter((x) => x !== 'forestfs')) {
      const values = new Map<string, number>();
      for (const m of chartMetrics) values.set(m.id, med('forestfs', m.id) / med(peer, m.id));
      out.push({ name: `ForestFS ÷ ${peer}`, color: COLORS[peer] ?? '#888', values });
    }
  } else {
    const ref = stores.includes('lmdb') ? 'lmdb' : stores[0];
    if (!ref) return out;
    for (const st of stores.filter((x) => x !== ref)) {
      const values = new Map<string, number>();
      for (const m of chartMetrics) values.set(m.id, med(st, m.id) / med(ref, m.id));
      out.push({ name: `${st} ÷ ${ref}`, color: COLORS[st] ?? '#888', values });
    }
  }
  return out;
}

function ticks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  }
  return out;
}

function fmtTick(v: number): string {
  return v >= 1 ? `${+v.toPrecision(3)}×` : `${+v.toPrecision(2)}×`;
}

function panel(title: string, series: Series[], x0: number, y0: number, width: number, rowsLabelW: number): { svg: string; height: number } {
  const metrics = METRICS.filter((m) => m.chart && series.some((s) => Number.isFinite(s.values.get(m.id) ?? NaN)));
  const barH = 9;
  const gap = 2;
  const rowPad = 10;
  const rowH = series.length * (barH + gap) + rowPad;
  const plotX = x0 + rowsLabelW;
  const plotW = width - rowsLabelW - 50;
  let lo = 1;
  let hi = 1;
  for (const s of series)
    for (const v of s.values.values())
      if (Number.isFinite(v) && v > 0) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
  lo = Math.max(1e-3, Math.min(0.5, lo / 1.3));
  hi = Math.min(1e3, Math.max(2, hi * 1.3));
  const lx = (v: number): number => plotX + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW;
  const top = y0 + 28;
  const plotH = metrics.length * rowH;
  const parts: string[] = [];
  parts.push(`<text x="${x0}" y="${y0 + 14}" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (const t of ticks(lo, hi)) {
    const x = lx(t).toFixed(1);
    parts.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + plotH}" stroke="${t === 1 ? '#333' : '#ddd'}" stroke-width="${t === 1 ? 1.5 : 1}"/>`);
    parts.push(`<text x="${x}" y="${top + plotH + 14}" font-size="10" text-anchor="middle" fill="#555">${fmtTick(t)}</text>`);
  }
  metrics.forEach((m, i) => {
    const ry = top + i * rowH;
    if (i % 2 === 1) parts.push(`<rect x="${x0}" y="${ry}" width="${width - 10}" height="${rowH}" fill="#f6f6f6" opacity="0.6"/>`);
    parts.push(`<text x="${plotX - 8}" y="${ry + rowH / 2 + 4}" font-size="11" text-anchor="end">${esc(m.label.trim())}</text>`);
    series.forEach((s, j) => {
      const v = s.values.get(m.id) ?? NaN;
      const by = ry + rowPad / 2 + j * (barH + gap);
      if (!Number.isFinite(v) || v <= 0) {
        parts.push(`<text x="${lx(1) + 4}" y="${by + barH - 1}" font-size="9" fill="#999">N/A</text>`);
        return;
      }
      const xv = lx(Math.min(hi, Math.max(lo, v)));
      const x1 = Math.min(lx(1), xv);
      const w = Math.max(1, Math.abs(xv - lx(1)));
      parts.push(`<rect x="${x1.toFixed(1)}" y="${by}" width="${w.toFixed(1)}" height="${barH}" fill="${s.color}"><title>${esc(`${s.name}, ${m.label.trim()}: ${v.toFixed(3)}×`)}</title></rect>`);
      const label = v >= 10 ? v.toFixed(1) : v.toFixed(2);
      parts.push(`<text x="${(v >= 1 ? xv + 3 : xv - 3).toFixed(1)}" y="${by + barH - 1}" font-size="9" text-anchor="${v >= 1 ? 'start' : 'end'}" fill="#333">${label}</text>`);
    });
  });
  return { svg: parts.join('\n'), height: top + plotH + 24 - y0 };
}

export function renderSvg(doc: BenchDoc, s: Summary, chartCommand: string): string {
  const forest = doc.forestfs.present;
  const modes = [...new Set(s.configs.map((c) => c.mode))];
  const panelW = 560;
  const labelW = 190;
  const W = Math.max(1, modes.length) * panelW + 20;
  const head: string[] = [];
  const title = forest
    ? 'ForestFS ÷ each peer, throughput per workload (ratio of medians; > 1 means ForestFS is faster)'
    : 'Throughput per workload normalised to lmdb (ratio of medians; ForestFS not built yet)';
  head.push(`<text x="10" y="22" font-size="16" font-weight="bold">${esc(title)}</text>`);
  const reps = Number(doc.settings.reps ?? 1);
  head.push(
    `<text x="10" y="40" font-size="11" fill="#444">${esc(
      `${doc.machine.cpuModel}, ${doc.machine.cores} cores, Linux ${doc.machine.kernel}, Node ${doc.machine.node}; ${Number(doc.settings.keys).toLocaleString('en-US')} keys, ${reps} repetition(s); log scale`,
    )}</text>`,
  );
  head.push(`<text x="10" y="55" font-size="10" fill="#666">${esc(`${doc.command}  →  ${chartCommand}`)}</text>`);
  // One legend for both panels (the series are the same in each mode).
  const legendSeries = seriesFor(s, modes[0] ?? 'durable', forest);
  let lxPos = 10;
  const ly = 74;
  if (!forest) {
    const ref = s.configs.some((c) => c.store === 'lmdb') ? 'lmdb' : (s.configs[0]?.store ?? '');
    head.push(`<line x1="${lxPos}" y1="${ly - 10}" x2="${lxPos}" y2="${ly + 1}" stroke="#333" stroke-width="1.5"/>`);
    head.push(`<text x="${lxPos + 5}" y="${ly}" font-size="11">${esc(`${ref} = 1×`)}</text>`);
    lxPos += 24 + `${ref} = 1×`.length * 6.5;
  }
  for (const se of legendSeries) {
    head.push(`<rect x="${lxPos}" y="${ly - 9}" width="10" height="10" fill="${se.color}"/>`);
    head.push(`<text x="${lxPos + 14}" y="${ly}" font-size="11">${esc(se.name)}</text>`);
    lxPos += 24 + se.name.length * 6.5;
  }
  const bodies: string[] = [];
  let maxH = 0;
  modes.forEach((mode, i) => {
    const p = panel(`${mode} mode`, seriesFor(s, mode, forest), 10 + i * panelW, 84, panelW, labelW);
    bodies.push(p.svg);
    maxH = Math.max(maxH, p.height);
  });
  const H = 84 + maxH + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...head,
    ...bodies,
    '</svg>',
    '',
  ].join('\n');
}

function main(): void {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write('Usage: npx tsx bench/chart.ts [FILE.json] [--out DIR]\n  default FILE bench/results/latest.json, default DIR bench/results\n');
    return;
  }
  let outDir = join(REPO_ROOT, 'bench', 'results');
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--out') outDir = resolve(args[++i] ?? outDir);
    else files.push(args[i] as string);
  }
  const file = resolve(files[0] ?? join(REPO_ROOT, 'bench', 'results', 'latest.json'));
  const doc = JSON.parse(readFileSync(file, 'utf8')) as BenchDoc;
  const s = summarize(doc);
  const rel = relative(REPO_ROOT, file) || file;
  const chartCommand = `npx tsx bench/chart.ts ${rel}${outDir !== join(REPO_ROOT, 'bench', 'results') ? ` --out ${relative(REPO_ROOT, outDir)}` : ''}`;
  mkdirSync(outDir, { recursive: true });
  const svgPath = join(outDir, 'chart.svg');
  const mdPath = join(outDir, 'table.md');
  writeFileSync(svgPath, renderSvg(doc, s, chartCommand));
  writeFileSync(mdPath, renderMarkdown(doc, s, chartCommand) + `\n![chart](chart.svg)\n`);
  process.stdout.write(`wrote ${relative(process.cwd(), svgPath)} and ${relative(process.cwd(), mdPath)}\n`);
  process.stdout.write(`data: ${doc.command}\nchart: ${chartCommand}\n`);
}

main();
