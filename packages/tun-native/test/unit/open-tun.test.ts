// Argument checks happen before any device is touched: no root needed.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { openTun } from '../../src/index.ts';

const built = existsSync(new URL('../../build/Release/tun_native.node', import.meta.url));
if (!built && process.env.CI) throw new Error('tun-native: the addon is not built (npm ci runs node-gyp)');

describe('openTun arguments', { skip: built ? false : 'addon not built' }, () => {
  it('rejects a name longer than an interface name can be', () => {
    assert.throws(() => openTun({ name: 'x'.repeat(16) }), /too long/);
  });

  it('rejects a non-string name', () => {
    assert.throws(() => openTun({ name: 42 as unknown as string }), /name must be a string/);
  });
});
