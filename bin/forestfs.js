#!/usr/bin/env node
// The CLI's entry point: the compiled src/cli.ts (built by `npm install` / `npm run build`).
import { existsSync } from 'node:fs';
const entry = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('forestfs: the CLI is not built yet; run `npm run build` in the forestfs package.');
  process.exit(1);
}
await import(entry.href);
