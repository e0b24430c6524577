import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bridgeLogSecrets } from '../../src/core/bridge-secrets.ts';
import { SecretRegistry } from '../../src/log/secrets.ts';

const FP = '0123456789ABCDEF0123456789ABCDEF01234567';
const CERT = 'ssH+9rP8dG2NLDN2XuFw63hIO/9MNNinLmxQDpVa+7kTOa9/m+tGWT1SmSYpQ9uTBGa6Hw';

test("a bridge's address, fingerprint and PT arguments are scrubbed wherever Tor prints them", () => {
  const registry = new SecretRegistry();
  for (const s of bridgeLogSecrets(`obfs4 10.99.0.21:5000 ${FP} cert=${CERT} iat-mode=0`)) registry.add(s);
  const torSays = `Nov 25 [notice] new bridge descriptor 'relay1' (fresh): $${FP}~relay1 [x] at 10.99.0.21; cert ${CERT}`;
  const scrubbed = registry.scrub(torSays);
  assert.ok(!scrubbed.includes('10.99.0.21') && !scrubbed.includes(FP) && !scrubbed.includes(CERT), scrubbed);
  assert.match(scrubbed, /new bridge descriptor 'relay1'/);
});

test('IPv6 bridges are scrubbed with and without brackets; a line that does not parse is scrubbed whole', () => {
  assert.ok(bridgeLogSecrets(`[2001:db8::7]:443 ${FP}`).includes('2001:db8::7'));
  assert.deepEqual(bridgeLogSecrets('not a bridge line'), ['not a bridge line']);
});
