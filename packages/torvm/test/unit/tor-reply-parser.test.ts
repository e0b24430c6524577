import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ControlReplyParser, describeReply, type ControlMessage } from '../../src/tor/reply-parser.ts';
import { isTorvmError, TorvmError } from '../../src/core/errors.ts';

/** Feeds `text` in the given chunk sizes and returns all messages. */
function parseAll(text: string, chunkSize = text.length): ControlMessage[] {
  const parser = new ControlReplyParser();
  const out: ControlMessage[] = [];
  for (let i = 0; i < text.length; i += chunkSize) out.push(...parser.push(text.slice(i, i + chunkSize)));
  assert.ok(parser.isIdle, 'nothing left buffered');
  return out;
}

// A real GETINFO reply from Tor 0.4.9.11 (with DisableNetwork 1), with events around it.
const GETINFO_TRANSCRIPT =
  '250-version=0.4.9.11\r\n' +
  '250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY="Starting"\r\n' +
  '250+config-text=\r\nAvoidDiskWrites 1\r\nBridge 127.0.0.1:1\r\n..hidden dot line\r\n.\r\n' +
  '250 OK\r\n' +
  '650 BW 0 0\r\n';

describe('ControlReplyParser', () => {
  it('parses mid lines, data blocks (dot-unstuffed) and end lines', () => {
    const [reply, event] = parseAll(GETINFO_TRANSCRIPT);
    assert.ok(reply && event);
    assert.equal(reply.status, 250);
    assert.equal(reply.isEvent, false);
    assert.deepEqual(reply.lines.map((l) => l.kind), ['mid', 'mid', 'data', 'end']);
    assert.equal(reply.lines[2]?.text, 'config-text=');
    assert.equal(reply.lines[2]?.data, 'AvoidDiskWrites 1\nBridge 127.0.0.1:1\n.hidden dot line');
    assert.deepEqual(event, { status: 650, isEvent: true, lines: [{ status: 650, kind: 'end', text: 'BW 0 0' }] });
  });

  it('gives the same result whatever the chunking (byte by byte, odd sizes)', () => {
    const whole = parseAll(GETINFO_TRANSCRIPT);
    for (const size of [1, 2, 3, 7, 13]) assert.deepEqual(parseAll(GETINFO_TRANSCRIPT, size), whole, `chunk size ${size}`);
  });

  it('keeps a reply intact when events arrive between its lines', () => {
    const wire =
      '250-ContactInfo=a\r\n' +
      '650 NOTICE between lines\r\n' +
      '250-Bridge=127.0.0.1:1\r\n' +
      '650-CONF_CHANGED\r\n' +
      '250 Nickname\r\n' +
      '650-ContactInfo=x\r\n' +
      '650 OK\r\n';
    const messages = parseAll(wire);
    assert.deepEqual(messages.map((m) => [m.isEvent, m.lines.length]), [[true, 1], [false, 3], [true, 3]]);
    assert.deepEqual(messages[1]?.lines.map((l) => l.text), ['ContactInfo=a', 'Bridge=127.0.0.1:1', 'Nickname']);
    assert.deepEqual(messages[2]?.lines.map((l) => l.text), ['CONF_CHANGED', 'ContactInfo=x', 'OK']);
  });

  it('parses multi-line log events sent as data blocks', () => {
    const [event] = parseAll('650+WARN\r\nfirst line\r\nsecond line\r\n.\r\n650 OK\r\n');
    assert.equal(event?.lines[0]?.data, 'first line\nsecond line');
    assert.equal(event?.status, 650);
  });

  it('accepts bare LF line endings and empty data blocks', () => {
    const [reply] = parseAll('250+x=\n.\n250 OK\n');
    assert.equal(reply?.lines[0]?.data, '');
  });

  it('reports error replies with their status', () => {
    const [reply] = parseAll('552 Unrecognized key "nonexistent/key"\r\n');
    assert.equal(reply?.status, 552);
    assert.equal(describeReply(reply as ControlMessage), '552 Unrecognized key "nonexistent/key"');
  });

  it('returns nothing until a message is complete', () => {
    const parser = new ControlReplyParser();
    assert.deepEqual(parser.push('250-a=1\r\n250+b=\r\ndata'), []);
    assert.equal(parser.isIdle, false);
    assert.deepEqual(parser.push('\r\n.\r\n'), []);
    assert.equal(parser.push('250 OK\r\n').length, 1);
  });

  it('fails on malformed lines and stays failed', () => {
    for (const bad of ['hello\r\n', '25 OK\r\n', '250OK\r\n', '\r\n', '2500 OK\r\n', 'abc-def\r\n']) {
      const parser = new ControlReplyParser();
      assert.throws(() => parser.push(bad), (err: unknown) => isTorvmError(err, 'ERR_TOR_CONTROL'), JSON.stringify(bad));
      assert.throws(() => parser.push('250 OK\r\n'), (err: unknown) => isTorvmError(err, 'ERR_TOR_CONTROL'));
    }
  });

  it('enforces line and message size limits', () => {
    const lines = new ControlReplyParser({ maxLineLength: 100 });
    assert.throws(() => lines.push('250-' + 'x'.repeat(200)), (err: unknown) => isTorvmError(err, 'ERR_TOR_CONTROL'));
    const messages = new ControlReplyParser({ maxMessageLength: 1000 });
    assert.throws(() => {
      for (let i = 0; i < 100; i++) messages.push(`250-key${i}=${'v'.repeat(50)}\r\n`);
    }, (err: unknown) => isTorvmError(err, 'ERR_TOR_CONTROL'));
  });

  it('never crashes or hangs on arbitrary input: returns messages or throws ERR_TOR_CONTROL (fuzz)', () => {
    const statusLine = fc.tuple(
      fc.constantFrom('250', '650', '552', '515', '251', '999', '25', 'abc'),
      fc.constantFrom('-', '+', ' ', ''),
      fc.string({ maxLength: 20 }),
    ).map(([code, sep, text]) => `${code}${sep}${text}`);
    const wireLine = fc.oneof(statusLine, fc.constant('.'), fc.constant('..x'), fc.string({ unit: 'binary', maxLength: 30 }));
    const wire = fc.array(wireLine, { maxLength: 30 }).map((lines) => lines.join('\r\n') + '\r\n');
    fc.assert(fc.property(wire, fc.integer({ min: 1, max: 17 }), (text, chunk) => {
      const parser = new ControlReplyParser({ maxLineLength: 4096, maxMessageLength: 65536 });
      try {
        for (let i = 0; i < text.length; i += chunk) {
          for (const message of parser.push(text.slice(i, i + chunk))) {
            assert.ok(message.lines.length > 0);
            assert.equal(message.lines.at(-1)?.kind, 'end');
            assert.equal(message.isEvent, message.status >= 600 && message.status <= 699);
          }
        }
      } catch (err) {
        if (!(err instanceof TorvmError) || err.code !== 'ERR_TOR_CONTROL') throw err;
      }
    }), { numRuns: 3000 });
  });
});
