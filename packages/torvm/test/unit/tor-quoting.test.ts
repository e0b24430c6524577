import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  assertConfigKey, assertInfoKey, assertSafeValue, decodeConfigValue, parseKeywordLine, quoteString, unquoteString,
} from '../../src/tor/quoting.ts';
import { isTorvmError } from '../../src/core/errors.ts';

const unsafe = (err: unknown): boolean => isTorvmError(err, 'ERR_UNSAFE_VALUE');

describe('quoteString', () => {
  it('escapes backslashes, quotes and tabs and keeps everything else', () => {
    assert.equal(quoteString('plain'), '"plain"');
    assert.equal(quoteString('a "b" \\ c'), '"a \\"b\\" \\\\ c"');
    assert.equal(quoteString('tab\there'), '"tab\\there"');
    assert.equal(quoteString('obfs4 1.2.3.4:443 FP cert=abc+/= iat-mode=0'), '"obfs4 1.2.3.4:443 FP cert=abc+/= iat-mode=0"');
    assert.equal(quoteString('héllo ✓'), '"héllo ✓"');
    assert.equal(quoteString(''), '""');
  });

  it('refuses CR, LF, NUL and other control characters before anything is rendered', () => {
    for (const bad of ['a\nb', 'a\rb', 'a\r\nSIGNAL HALT', 'nul\0', '\x1b[31m', 'del\x7f', '\nGETINFO x']) {
      assert.throws(() => quoteString(bad), unsafe, JSON.stringify(bad));
      assert.throws(() => assertSafeValue(bad, 'field'), unsafe);
    }
  });

  it('never puts the refused value in the error message', () => {
    assert.throws(() => quoteString('secret-password\n', 'the control password'), (err: unknown) =>
      unsafe(err) && err instanceof Error && !err.message.includes('secret-password') && err.message.includes('U+000A'));
  });

  it('round-trips through unquoteString for every safe string (property)', () => {
    const safe = fc.string({ unit: 'binary', maxLength: 80 }).filter((s) => !/[\x00-\x08\x0a-\x1f\x7f]/.test(s));
    fc.assert(fc.property(safe, (value) => {
      const quoted = quoteString(value);
      const parsed = unquoteString(quoted);
      assert.equal(parsed.end, quoted.length);
      // Lone surrogates cannot survive UTF-8 anyway; compare what UTF-8 can carry.
      assert.equal(parsed.value, Buffer.from(value, 'utf8').toString('utf8'));
      // The rendered form is one line, whatever the input.
      assert.doesNotMatch(quoted, /[\r\n\0]/);
    }), { numRuns: 500 });
  });
});

describe('unquoteString', () => {
  it('understands the C escapes Tor writes, including octal UTF-8 bytes', () => {
    assert.deepEqual(unquoteString('"a\\"b\\\\c"'), { value: 'a"b\\c', end: 9 });
    assert.equal(unquoteString('"x\\ty\\001"').value, 'x\ty\x01');
    assert.equal(unquoteString('"h\\303\\251llo"').value, 'héllo');
    assert.equal(unquoteString('"\\x41\\n\\r\\\'"').value, "A\n\r'");
    assert.equal(unquoteString('"\\q"').value, 'q');
  });

  it('reports where the string ends', () => {
    assert.deepEqual(unquoteString('KEY="v w" rest', 4), { value: 'v w', end: 9 });
  });

  it('throws ERR_TOR_CONTROL on an unterminated string', () => {
    for (const bad of ['"abc', '"abc\\"', '"\\', 'abc']) {
      assert.throws(() => unquoteString(bad), (err: unknown) => isTorvmError(err, 'ERR_TOR_CONTROL'), bad);
    }
  });
});

describe('decodeConfigValue', () => {
  it('unquotes only complete quoted values', () => {
    assert.equal(decodeConfigValue('a "q" \\ b'), 'a "q" \\ b');
    assert.equal(decodeConfigValue('"x\\ty"'), 'x\ty');
    assert.equal(decodeConfigValue('"half'), '"half');
    assert.equal(decodeConfigValue('"a" b'), '"a" b');
  });
});

describe('keys', () => {
  it('accepts option names and GETINFO keys', () => {
    for (const key of ['Bridge', 'ContactInfo', '__OwningControllerProcess', 'SocksPort']) assertConfigKey(key);
    for (const key of ['version', 'status/bootstrap-phase', 'ns/id/$ABCD', 'ip-to-country/1.2.3.4', 'net/listeners/socks']) assertInfoKey(key);
  });

  it('refuses keys that could smuggle arguments or lines', () => {
    for (const key of ['', 'Bridge X', 'a=b', 'x\ny', '"q"', 'Sock\0s', '1abc']) assert.throws(() => assertConfigKey(key), unsafe, key);
    for (const key of ['', 'a b', 'x\r\ny', 'quo"te', 'tab\t']) assert.throws(() => assertInfoKey(key), unsafe, key);
  });
});

describe('parseKeywordLine', () => {
  it('splits positional words and KEY=value pairs with quoted values', () => {
    const line = parseKeywordLine('NOTICE BOOTSTRAP PROGRESS=10 TAG=conn_done SUMMARY="Connected to a relay"');
    assert.deepEqual(line.positional, ['NOTICE', 'BOOTSTRAP']);
    assert.deepEqual(Object.fromEntries(line.keywords), { PROGRESS: '10', TAG: 'conn_done', SUMMARY: 'Connected to a relay' });
  });

  it('keeps $FP=nick paths positional and unescapes quoted values', () => {
    const line = parseKeywordLine('5 BUILT $AAAA=alice,$BBBB~bob PURPOSE=GENERAL  REASON="a \\"b\\""');
    assert.deepEqual(line.positional, ['5', 'BUILT', '$AAAA=alice,$BBBB~bob']);
    assert.equal(line.keywords.get('REASON'), 'a "b"');
  });

  it('takes a stray quote literally instead of failing', () => {
    const line = parseKeywordLine('W="unterminated value');
    assert.equal(line.keywords.get('W'), '"unterminated');
    assert.deepEqual(line.positional, ['value']);
  });

  it('never throws and always terminates on arbitrary input (fuzz)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => {
      const line = parseKeywordLine(text);
      assert.ok(Array.isArray(line.positional));
    }), { numRuns: 2000 });
  });
});
