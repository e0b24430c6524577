// The stack is pure: only the two adapter files may import Node's OS modules.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { it } from 'node:test';

const OS_ADAPTERS = new Set(['socks5-dialer.ts', 'dns-udp-transport.ts']);
const src = new URL('../../src/', import.meta.url);

it('imports node: modules only in the OS adapters', () => {
  const offenders: string[] = [];
  const files = readdirSync(src).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length > 10, 'the scan sees the sources');
  for (const file of files) {
    const text = readFileSync(new URL(file, src), 'utf8');
    const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((m) => m[1]!);
    for (const spec of specs) {
      if (spec.startsWith('node:') || /^(fs|net|dgram|child_process|os|process)$/.test(spec)) {
        if (!OS_ADAPTERS.has(file)) offenders.push(`${file} -> ${spec}`);
      }
    }
  }
  assert.deepEqual(offenders, []);
  assert.match(readFileSync(new URL('socks5-dialer.ts', src), 'utf8'), /from 'node:net'/, 'the scanner would see an import');
});
