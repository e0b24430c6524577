import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseBootstrapStatus, parseCircuitPath, parseEvent, type TorEvent } from '../../src/tor/events.ts';
import { ControlReplyParser } from '../../src/tor/reply-parser.ts';

function event(wire: string): TorEvent {
  const [message] = new ControlReplyParser().push(wire);
  assert.ok(message?.isEvent);
  return parseEvent(message);
}

describe('parseEvent', () => {
  it('STATUS_CLIENT BOOTSTRAP progress', () => {
    const e = event('650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=10 TAG=conn_done SUMMARY="Connected to a relay"\r\n');
    assert.equal(e.type, 'STATUS_CLIENT');
    if (e.type !== 'STATUS_CLIENT') return;
    assert.equal(e.severity, 'NOTICE');
    assert.equal(e.action, 'BOOTSTRAP');
    assert.deepEqual(e.bootstrap, { severity: 'NOTICE', kind: 'progress', progress: 10, tag: 'conn_done', summary: 'Connected to a relay' });
  });

  it('STATUS_CLIENT BOOTSTRAP problem keeps Tor\'s WARNING, REASON and RECOMMENDATION', () => {
    const e = event('650 STATUS_CLIENT WARN BOOTSTRAP PROGRESS=1 TAG=conn SUMMARY="Connecting to a relay" ' +
      'WARNING="Connection refused" REASON=CONNECTREFUSED COUNT=3 RECOMMENDATION=ignore HOSTID="AAAA" HOSTADDR="127.0.0.1:1"\r\n');
    assert.ok(e.type === 'STATUS_CLIENT' && e.bootstrap);
    assert.deepEqual(e.bootstrap, {
      severity: 'WARN', kind: 'problem', progress: 1, tag: 'conn', summary: 'Connecting to a relay',
      warning: 'Connection refused', reason: 'CONNECTREFUSED', recommendation: 'ignore', count: 3, host: '127.0.0.1:1',
    });
  });

  it('other STATUS_* events have no bootstrap part', () => {
    const e = event('650 STATUS_GENERAL WARN CLOCK_SKEW SKEW=-3600 SOURCE=CONSENSUS\r\n');
    assert.ok(e.type === 'STATUS_GENERAL');
    assert.equal(e.bootstrap, undefined);
    assert.equal(e.action, 'CLOCK_SKEW');
    assert.equal(e.args.get('SKEW'), '-3600');
  });

  it('CIRC with a $FP~nick path and keywords', () => {
    const e = event('650 CIRC 7 BUILT $0123456789ABCDEF0123456789ABCDEF01234567~guard,$89ABCDEF0123456789ABCDEF0123456789ABCDEF~exit ' +
      'BUILD_FLAGS=IS_INTERNAL,NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2024-01-01T00:00:00.000000\r\n');
    assert.ok(e.type === 'CIRC');
    assert.equal(e.circuitId, '7');
    assert.equal(e.status, 'BUILT');
    assert.deepEqual(e.path, [
      { fingerprint: '0123456789ABCDEF0123456789ABCDEF01234567', nickname: 'guard' },
      { fingerprint: '89ABCDEF0123456789ABCDEF0123456789ABCDEF', nickname: 'exit' },
    ]);
    assert.deepEqual(e.buildFlags, ['IS_INTERNAL', 'NEED_CAPACITY']);
    assert.equal(e.purpose, 'GENERAL');
  });

  it('CIRC without a path, with a reason', () => {
    const e = event('650 CIRC 8 FAILED REASON=TIMEOUT\r\n');
    assert.ok(e.type === 'CIRC');
    assert.deepEqual(e.path, []);
    assert.equal(e.reason, 'TIMEOUT');
  });

  it('STREAM', () => {
    const e = event('650 STREAM 12 CLOSED 7 example.com:443 REASON=DONE\r\n');
    assert.deepEqual(e.type === 'STREAM' && [e.streamId, e.status, e.circuitId, e.target, e.reason], ['12', 'CLOSED', '7', 'example.com:443', 'DONE']);
  });

  it('BW', () => {
    const e = event('650 BW 1024 2048\r\n');
    assert.deepEqual(e.type === 'BW' && [e.bytesRead, e.bytesWritten], [1024, 2048]);
  });

  it('NOTICE and WARN log events, single line and data block', () => {
    const notice = event('650 NOTICE Rate limiting NEWNYM request: delaying by 10 second(s)\r\n');
    assert.deepEqual(notice.type === 'LOG' && [notice.severity, notice.message], ['NOTICE', 'Rate limiting NEWNYM request: delaying by 10 second(s)']);
    const [message] = new ControlReplyParser().push('650+WARN\r\nline one\r\nline two\r\n.\r\n650 OK\r\n');
    const warn = parseEvent(message!);
    assert.deepEqual(warn.type === 'LOG' && [warn.severity, warn.message], ['WARN', 'line one\nline two']);
  });

  it('CONF_CHANGED with set, quoted and reset options', () => {
    const [message] = new ControlReplyParser().push('650-CONF_CHANGED\r\n650-ContactInfo="x\\ty"\r\n650-Bridge=127.0.0.1:1\r\n650-Nickname\r\n650 OK\r\n');
    const e = parseEvent(message!);
    assert.ok(e.type === 'CONF_CHANGED');
    assert.deepEqual(e.changes, [
      { key: 'ContactInfo', value: 'x\ty' }, { key: 'Bridge', value: '127.0.0.1:1' }, { key: 'Nickname', value: undefined },
    ]);
  });

  it('SIGNAL and unknown events', () => {
    assert.deepEqual(event('650 SIGNAL NEWNYM\r\n'), { type: 'SIGNAL', signal: 'NEWNYM', raw: 'SIGNAL NEWNYM' });
    assert.deepEqual(event('650 HS_DESC whatever\r\n'), { type: 'UNKNOWN', name: 'HS_DESC', raw: 'HS_DESC whatever' });
  });

  it('never throws on arbitrary event text (fuzz)', () => {
    const names = fc.constantFrom('STATUS_CLIENT', 'CIRC', 'STREAM', 'BW', 'NOTICE', 'WARN', 'CONF_CHANGED', 'SIGNAL', 'X');
    fc.assert(fc.property(names, fc.string({ maxLength: 60 }), (name, rest) => {
      const e = parseEvent({ status: 650, isEvent: true, lines: [{ status: 650, kind: 'end', text: `${name} ${rest}` }] });
      assert.equal(typeof e.type, 'string');
    }), { numRuns: 2000 });
  });
});

describe('parseBootstrapStatus', () => {
  it('reads GETINFO status/bootstrap-phase values and clamps progress', () => {
    assert.deepEqual(parseBootstrapStatus('NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"'),
      { severity: 'NOTICE', kind: 'progress', progress: 100, tag: 'done', summary: 'Done' });
    assert.equal(parseBootstrapStatus('NOTICE BOOTSTRAP PROGRESS=250 TAG=x')?.progress, 100);
    assert.equal(parseBootstrapStatus('NOTICE BOOTSTRAP PROGRESS=-5 TAG=x')?.progress, 0);
    assert.equal(parseBootstrapStatus('NOTICE CIRCUIT_ESTABLISHED'), undefined);
  });
});

describe('parseCircuitPath', () => {
  it('handles $FP~nick, $FP=nick, $FP and bare nicknames', () => {
    assert.deepEqual(parseCircuitPath('$AA~a,$BB=b,$CC,dee'), [
      { fingerprint: 'AA', nickname: 'a' }, { fingerprint: 'BB', nickname: 'b' },
      { fingerprint: 'CC', nickname: undefined }, { fingerprint: undefined, nickname: 'dee' },
    ]);
  });
});
