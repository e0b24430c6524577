/**
 * Holds the layout's boundaries (aesthetics.md §6):
 *  - core/ is pure: no OS, file, process or network modules;
 *  - only platform/index.ts reads process.platform;
 *  - per-OS code (platform/linux|darwin|win32) is reached only through platform/;
 *  - netstack is standalone; the runtime never imports image/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';

const repo = resolve(new URL('../../../..', import.meta.url).pathname);
const torvmSrc = join(repo, 'packages/torvm/src');

function sources(dir: string): string[] {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(ts|tsx)$/.test(e)) out.push(p);
  }
  return out;
}

/** Static and dynamic import specifiers of a file. */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/g)) specs.push(m[1] ?? '');
  for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) specs.push(m[1] ?? '');
  return specs;
}

const CORE_ALLOWED_BARE = new Set(['zod', 'node:crypto']);

test('core/ imports nothing OS-aware', () => {
  const offenders: string[] = [];
  for (const file of sources(join(torvmSrc, 'core'))) {
    for (const spec of imports(file)) {
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec);
        if (!target.startsWith(join(torvmSrc, 'core'))) offenders.push(`${relative(repo, file)} -> ${spec}`);
      } else if (!CORE_ALLOWED_BARE.has(spec)) {
        offenders.push(`${relative(repo, file)} -> ${spec}`);
      }
    }
    if (/\bprocess\./.test(readFileSync(file, 'utf8'))) offenders.push(`${relative(repo, file)} uses process.*`);
  }
  assert.deepEqual(offenders, []);
});

test('only platform/index.ts reads process.platform', () => {
  const offenders = [...sources(torvmSrc), ...sources(join(repo, 'packages/netstack/src'))]
    .filter((f) => f !== join(torvmSrc, 'platform/index.ts'))
    .filter((f) => /process\.platform/.test(readFileSync(f, 'utf8')))
    .map((f) => relative(repo, f));
  assert.deepEqual(offenders, []);
});

test('per-OS code is reached only from inside platform/', () => {
  const offenders: string[] = [];
  for (const file of sources(torvmSrc)) {
    if (file.startsWith(join(torvmSrc, 'platform'))) continue;
    for (const spec of imports(file)) {
      if (!spec.startsWith('.')) continue;
      const target = relative(torvmSrc, resolve(dirname(file), spec));
      if (/^platform\/(linux|darwin|win32)\//.test(target)) offenders.push(`${relative(repo, file)} -> ${spec}`);
    }
  }
  assert.deepEqual(offenders, []);
});

test('netstack is standalone and the runtime never imports image/', () => {
  const offenders: string[] = [];
  for (const file of sources(join(repo, 'packages/netstack/src'))) {
    for (const spec of imports(file)) {
      if (spec.startsWith('.') && !resolve(dirname(file), spec).startsWith(join(repo, 'packages/netstack'))) offenders.push(`${relative(repo, file)} -> ${spec}`);
      if (spec === 'torvm' || spec.startsWith('torvm/')) offenders.push(`${relative(repo, file)} -> ${spec}`);
    }
  }
  for (const file of sources(torvmSrc)) {
    for (const spec of imports(file)) {
      if (spec.startsWith('.') && resolve(dirname(file), spec).startsWith(join(repo, 'image'))) offenders.push(`${relative(repo, file)} -> ${spec}`);
    }
  }
  assert.deepEqual(offenders, []);
});

test('the scanner itself sees imports (so the tests above can fail)', () => {
  const specs = imports(join(torvmSrc, 'core/torrc.ts'));
  assert.ok(specs.includes('./errors.ts'));
  assert.ok(imports(join(torvmSrc, 'platform/config-file.ts')).includes('node:fs/promises'));
});
