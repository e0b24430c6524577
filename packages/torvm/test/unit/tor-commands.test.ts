import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  parseGetConfReply, parseGetInfoReply, parseProtocolInfo, renderAuthenticate, renderGetConf, renderGetInfo, renderResetConf,
  renderSetConf, renderSetEvents, renderSignal, replyError, type TorSignal,
} from '../../src/tor/commands.ts';
import type { TorEventName } from '../../src/tor/events.ts';
import { ControlReplyParser, type ControlMessage } from '../../src/tor/reply-parser.ts';
import { isTorvmError } from '../../src/core/errors.ts';

const unsafe = (err: unknown): boolean => isTorvmError(err, 'ERR_UNSAFE_VALUE');

function reply(wire: string): ControlMessage {
  const [message] = new ControlReplyParser().push(wire);
  assert.ok(message);
  return message;
}

describe('command rendering', () => {
  it('renders exactly one line per command, values always quoted', () => {
    assert.equal(renderAuthenticate('pa ss"w\\d'), 'AUTHENTICATE "pa ss\\"w\\\\d"');
    assert.equal(renderGetInfo(['version', 'status/bootstrap-phase']), 'GETINFO version status/bootstrap-phase');
    assert.equal(renderGetConf(['Bridge', 'UseBridges']), 'GETCONF Bridge UseBridges');
    assert.equal(
      renderSetConf({ UseBridges: '1', Bridge: ['obfs4 192.0.2.1:443 FP cert=a+b/c= iat-mode=0', '192.0.2.2:9001'], ContactInfo: null }),
      'SETCONF UseBridges="1" Bridge="obfs4 192.0.2.1:443 FP cert=a+b/c= iat-mode=0" Bridge="192.0.2.2:9001" ContactInfo',
    );
    assert.equal(renderSetConf({ Bridge: [] }), 'SETCONF Bridge');
    assert.equal(renderResetConf(['Bridge', 'UseBridges']), 'RESETCONF Bridge UseBridges');
    assert.equal(renderResetConf({ ContactInfo: 'a "b"' }), 'RESETCONF ContactInfo="a \\"b\\""');
    assert.equal(renderSetEvents(['STATUS_CLIENT', 'CIRC', 'STATUS_CLIENT']), 'SETEVENTS STATUS_CLIENT CIRC');
    assert.equal(renderSetEvents([]), 'SETEVENTS');
    assert.equal(renderSignal('NEWNYM'), 'SIGNAL NEWNYM');
  });

  it('refuses newline injection in values, passwords and keys before rendering', () => {
    assert.throws(() => renderSetConf({ ContactInfo: 'x\r\nSIGNAL HALT' }), unsafe);
    assert.throws(() => renderSetConf({ Bridge: ['ok', 'bad\n'] }), unsafe);
    assert.throws(() => renderSetConf({ 'Bridge\r\nSIGNAL HALT': '1' }), unsafe);
    assert.throws(() => renderSetConf({ 'Bridge=1 UseBridges': '0' }), unsafe);
    assert.throws(() => renderAuthenticate('pw\r\nSIGNAL HALT'), unsafe);
    assert.throws(() => renderGetInfo(['version\r\nSIGNAL HALT']), unsafe);
    assert.throws(() => renderGetConf(['Bridge UseBridges']), unsafe);
    assert.throws(() => renderSetEvents(['CIRC\r\nSIGNAL HALT' as TorEventName]), unsafe);
    assert.throws(() => renderSignal('HALT\r\n' as TorSignal), unsafe);
  });

  it('refuses empty key lists', () => {
    assert.throws(() => renderGetInfo([]), (err: unknown) => isTorvmError(err, 'ERR_INTERNAL'));
    assert.throws(() => renderSetConf({}), (err: unknown) => isTorvmError(err, 'ERR_INTERNAL'));
  });

  it('whatever the value, SETCONF is one line or refused (property)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (value) => {
      try {
        assert.doesNotMatch(renderSetConf({ Bridge: value }), /[\r\n\0]/);
      } catch (err) {
        assert.ok(unsafe(err));
        assert.match(value, /[\x00-\x08\x0a-\x1f\x7f]/);
      }
    }), { numRuns: 1000 });
  });
});

describe('reply interpretation', () => {
  it('GETINFO: key=value lines and data blocks', () => {
    const values = parseGetInfoReply(reply('250-version=0.4.9.11\r\n250-circuit-status=\r\n250+config-text=\r\nA 1\r\nB 2\r\n.\r\n250 OK\r\n'));
    assert.deepEqual(Object.fromEntries(values), { version: '0.4.9.11', 'circuit-status': '', 'config-text': 'A 1\nB 2' });
  });

  it('GETCONF: raw values, Tor-quoted values, repeated keys and unset keys', () => {
    // As Tor 0.4.9.11 answered after SETCONF ContactInfo="x\ty\001" and two Bridge lines.
    const values = parseGetConfReply(reply('250-ContactInfo="x\\ty\\001"\r\n250-Bridge=127.0.0.1:1\r\n250-Bridge=127.0.0.1:2\r\n250-Raw=a "q" \\ b\r\n250 Nickname\r\n'));
    assert.deepEqual(Object.fromEntries(values), {
      ContactInfo: ['x\ty\x01'], Bridge: ['127.0.0.1:1', '127.0.0.1:2'], Raw: ['a "q" \\ b'], Nickname: [],
    });
  });

  it('PROTOCOLINFO: auth methods and Tor version', () => {
    const info = parseProtocolInfo(reply('250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE,HASHEDPASSWORD COOKIEFILE="/x/cookie"\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n'));
    assert.deepEqual(info, { authMethods: ['COOKIE', 'SAFECOOKIE', 'HASHEDPASSWORD'], torVersion: '0.4.9.11' });
  });

  it('errors carry the command keyword and status, never the arguments', () => {
    const err = replyError('AUTHENTICATE', reply('515 Authentication failed: Password did not match\r\n'));
    assert.equal(err.code, 'ERR_TOR_CONTROL');
    assert.deepEqual(err.details, { command: 'AUTHENTICATE', status: 515, reply: '515 Authentication failed: Password did not match' });
  });
});
