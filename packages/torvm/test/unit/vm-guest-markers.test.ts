import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGuestLine } from '../../src/vm/guest-markers.ts';

test('guest markers become typed events', () => {
  const table: Array<[string, unknown]> = [
    ['torvm-guest: init started', { kind: 'init-started' }],
    ['torvm-guest: tor started pid=218', { kind: 'tor-started', pid: 218 }],
    ['torvm-guest: tor exited code=1', { kind: 'tor-exited', code: 1 }],
    ['torvm-guest: state disk ready', { kind: 'state-disk', status: 'ready' }],
    ['torvm-guest: state disk repaired', { kind: 'state-disk', status: 'repaired' }],
    ['torvm-guest: warning: state disk recreated (e2fsck exit 8)', { kind: 'state-disk', status: 'recreated', detail: 'e2fsck exit 8' }],
    ['torvm-guest: warning: state disk recreated (no filesystem found)', { kind: 'state-disk', status: 'recreated', detail: 'no filesystem found' }],
    ['torvm-guest: warning: no state disk, tor data lives in memory', { kind: 'state-disk', status: 'in-memory' }],
    ['torvm-guest: fatal: cannot load the firewall', { kind: 'fatal', message: 'cannot load the firewall' }],
    ['torvm-guest: warning: no entropy seed', { kind: 'warning', message: 'no entropy seed' }],
    ['torvm-guest: shutdown complete\r', { kind: 'shutdown-complete' }],
    ['torvm-guest: wan up 10.0.2.15', { kind: 'wan-up', address: '10.0.2.15' }],
    ['torvm-guest: entropy seeded', { kind: 'entropy-seeded' }],
    ['torvm-guest: something new', { kind: 'marker', text: 'something new' }],
    ['[    1.698851] Kernel panic - not syncing: NMI: Not continuing', { kind: 'kernel-panic', message: 'NMI: Not continuing' }],
    ['Nov 25 15:22:41.000 [notice] Bootstrapped 0% (starting): Starting', null],
    ['', null],
  ];
  for (const [line, want] of table) assert.deepEqual(parseGuestLine(line), want, line);
});

test('a marker after other output on the same line is still found', () => {
  assert.deepEqual(parseGuestLine('garbage torvm-guest: lan up'), { kind: 'lan-up' });
});
