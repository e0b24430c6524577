import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serialLineLevel } from '../../src/vm/guest-markers.ts';

test("serial lines keep Tor's severity, so the GUI's warn filter shows Tor's warnings", () => {
  assert.equal(serialLineLevel('Nov 25 16:13:26.000 [warn] Proxy Client: unable to connect to 10.99.0.61:1080'), 'warn');
  assert.equal(serialLineLevel('Nov 25 16:13:26.000 [err] Reading config failed'), 'error');
  assert.equal(serialLineLevel('[    3.1] Kernel panic - not syncing: Attempted to kill init!'), 'error');
  assert.equal(serialLineLevel('Nov 25 16:13:26.000 [notice] Bootstrapped 50% (loading_descriptors)'), 'info');
  assert.equal(serialLineLevel('TORVM-GUEST: ready'), 'info');
});
