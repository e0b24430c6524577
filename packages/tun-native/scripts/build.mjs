#!/usr/bin/env node
// Builds the addon with node-gyp, offline. node-gyp downloads Node's headers
// unless it is told where they are, so point it at the headers that ship with
// the running Node (Debian/NodeSource: <prefix>/include/node) when they exist.
// The node-gyp used is the one npm bundles (npm puts it on PATH for lifecycle
// scripts); outside npm, fall back to npm's own copy next to this Node.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';

const packageDir = new URL('..', import.meta.url).pathname;
const prefix = dirname(dirname(process.execPath));
const args = ['rebuild'];
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);

const bundled = [
  join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].find((p) => existsSync(p));
const [file, argv] = bundled ? [process.execPath, [bundled, ...args]] : ['node-gyp', args];

const result = spawnSync(file, argv, { cwd: packageDir, stdio: 'inherit', timeout: 300_000 });
if (result.error) {
  process.stderr.write(`tun-native: node-gyp could not run: ${result.error.message}\n`);
  process.exit(1);
}
process.exit(result.status ?? 1);
