#!/usr/bin/env node
// The one test command (README, CI). It runs every tier in one node:test
// invocation so the runner's closing summary counts them all.
//   --quick   unit tier only (a developer's fast loop; CI never passes it)
//   --tier=a,b  only these tiers: unit, integration, e2e, leak, browser
import { readdirSync, statSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const TIERS = {
  unit: ['packages/*/test/unit', 'image/test/unit'],
  integration: ['packages/*/test/integration', 'image/test/integration'],
  e2e: ['test/e2e'],
  leak: ['test/leak'],
  browser: ['test/browser'],
};

const args = process.argv.slice(2);
let tiers = Object.keys(TIERS);
if (args.includes('--quick')) tiers = ['unit'];
const tierArg = args.find((a) => a.startsWith('--tier='));
if (tierArg) tiers = tierArg.slice('--tier='.length).split(',');
for (const t of tiers) {
  if (!(t in TIERS)) {
    console.error(`test.mjs: unknown tier "${t}" (known: ${Object.keys(TIERS).join(', ')})`);
    process.exit(2);
  }
}
if (process.env.CI && tiers.length !== Object.keys(TIERS).length) {
  console.error('test.mjs: CI must run every tier');
  process.exit(2);
}

function expand(pattern) {
  const parts = pattern.split('/');
  let bases = [root];
  for (const part of parts) {
    const next = [];
    for (const base of bases) {
      if (part === '*') {
        if (!existsSync(base)) continue;
        for (const e of readdirSync(base)) if (statSync(join(base, e)).isDirectory()) next.push(join(base, e));
      } else next.push(join(base, part));
    }
    bases = next;
  }
  return bases.filter((b) => existsSync(b));
}

function testFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir).sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...testFiles(p));
    else if (e.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const files = [];
for (const t of tiers) for (const pattern of TIERS[t]) for (const dir of expand(pattern)) files.push(...testFiles(dir));
if (files.length === 0) {
  console.error('test.mjs: no test files found');
  process.exit(1);
}
console.error(`test.mjs: tiers ${tiers.join(', ')}: ${files.length} files`);
// Integration and later tiers share namespaces, QEMU and tor: one file at a time.
const concurrency = tiers.length === 1 && tiers[0] === 'unit' ? '2' : '1';
const tapFile = join(mkdtempSync(join(tmpdir(), 'torvm-test-')), 'results.tap');
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`,
    '--test-reporter=spec', '--test-reporter-destination=stdout',
    '--test-reporter=tap', `--test-reporter-destination=${tapFile}`,
    ...files.map((f) => relative(root, f))],
  { cwd: root, stdio: 'inherit' },
);
// A plain closing line that any reader understands.
const tap = existsSync(tapFile) ? readFileSync(tapFile, 'utf8') : '';
const count = (k) => Number((tap.match(new RegExp(`^# ${k} (\\d+)$`, 'm')) ?? [])[1] ?? 0);
console.log(`tests: ${count('pass')} passed, ${count('fail')} failed, ${count('skipped')} skipped`);
process.exit(r.status ?? 1);
