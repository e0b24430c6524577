import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateConfig, defaultConfig, maskSecrets, configJsonSchema, formatJsonPath } from '../../src/core/config.ts';
import { testDefaults } from '../helpers/defaults.ts';

const fixtures = new URL('../fixtures/', import.meta.url).pathname;
const expected = JSON.parse(readFileSync(join(fixtures, 'config-bad-expected.json'), 'utf8')) as Record<string, string>;

test('at least 40 bad config fixtures exist, each with an expected path', () => {
  const files = readdirSync(join(fixtures, 'config/bad')).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 40, `only ${files.length} fixtures`);
  assert.deepEqual(files.sort(), Object.keys(expected).sort());
});

for (const [file, path] of Object.entries(expected)) {
  test(`bad config ${file} is refused at ${path}`, () => {
    const doc: unknown = JSON.parse(readFileSync(join(fixtures, 'config/bad', file), 'utf8'));
    const result = validateConfig(doc, testDefaults);
    assert.equal(result.ok, false);
    if (result.ok) return;
    const paths = result.problems.map((p) => p.path);
    assert.ok(paths.includes(path), `expected a problem at ${path}, got ${JSON.stringify(result.problems)}`);
    for (const p of result.problems) assert.ok(p.message.length > 0);
  });
}

for (const file of readdirSync(join(fixtures, 'config/good'))) {
  test(`good config ${file} is accepted`, () => {
    const result = validateConfig(JSON.parse(readFileSync(join(fixtures, 'config/good', file), 'utf8')), testDefaults);
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
  });
}

test('every problem is reported, not just the first', () => {
  const result = validateConfig({ configVersion: 1, vm: { cpus: 0, memoryMiB: 1 }, tor: { socksPort: 0 }, bogus: 1 }, testDefaults);
  assert.equal(result.ok, false);
  if (result.ok) return;
  assert.deepEqual(result.problems.map((p) => p.path), ['bogus', 'tor.socksPort', 'vm.cpus', 'vm.memoryMiB']);
});

test('defaults are complete and fail-closed', () => {
  const c = defaultConfig(testDefaults);
  assert.equal(c.network.allowLan, false);
  assert.equal(c.tor.bridges.enabled, false);
  assert.equal(c.tor.testingNetwork, undefined);
  assert.equal(c.vm.accel, 'auto');
  assert.equal(c.network.tapName, 'torvm0');
  assert.equal(c.network.vmAddress, '10.10.10.1');
  assert.equal(c.network.hostAddress, '10.10.10.2');
  assert.equal(c.vm.stateDir, testDefaults.stateDir);
});

test('maskSecrets hides passwords and bridge lines but keeps the transport', () => {
  const good = JSON.parse(readFileSync(join(fixtures, 'config/good/full.json'), 'utf8')) as unknown;
  const result = validateConfig(good, testDefaults);
  assert.ok(result.ok);
  if (!result.ok) return;
  const masked = JSON.stringify(maskSecrets(result.config));
  assert.ok(!masked.includes('s3cr3t-pass'));
  assert.ok(!masked.includes('cert='));
  assert.ok(!masked.includes('192.0.2.10'));
  assert.ok(masked.includes('obfs4 ********'));
  // The original is untouched.
  assert.ok(JSON.stringify(result.config).includes('s3cr3t-pass'));
});

test('the JSON Schema describes every top-level section and forbids unknown keys', () => {
  const schema = configJsonSchema(testDefaults) as { properties: Record<string, unknown>; additionalProperties: unknown };
  assert.deepEqual(Object.keys(schema.properties).sort(), ['api', 'configVersion', 'lanGateway', 'log', 'network', 'service', 'tor', 'vm']);
  assert.equal(schema.additionalProperties, false);
});

test('formatJsonPath', () => {
  assert.equal(formatJsonPath(['tor', 'bridges', 'lines', 2]), 'tor.bridges.lines[2]');
  assert.equal(formatJsonPath([]), '(root)');
});
