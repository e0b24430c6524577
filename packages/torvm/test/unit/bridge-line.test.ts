import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseBridgeLine, formatBridgeLine } from '../../src/core/bridge-line.ts';

const FP = '0123456789ABCDEF0123456789ABCDEF01234567';
const CERT = 'ssH+9rP8dG2NLDN2XuFw63hIO/9MNNinLmxQDpVa+7kTOa9/m+tGWT1SmSYpQ9uTBGa6Hw';

const GOOD: Array<[string, string]> = [
  [`192.0.2.1:443`, 'vanilla'],
  [`192.0.2.1:443 ${FP}`, 'vanilla'],
  [`[2001:db8::1]:443 $${FP}`, 'vanilla'],
  [`Bridge obfs4 192.0.2.1:443 ${FP} cert=${CERT} iat-mode=0`, 'obfs4'],
  [`obfs4 192.0.2.1:443 ${FP} cert=${CERT} iat-mode=2`, 'obfs4'],
  [`snowflake 192.0.2.3:80 ${FP} fingerprint=${FP} url=https://broker.example/ fronts=a.example,b.example ice=stun:stun.l.example:19302 utls-imitate=hellorandomizedalpn`, 'snowflake'],
  [`meek_lite 192.0.2.18:80 ${FP} url=https://meek.example/ front=ajax.example.com`, 'meek_lite'],
  // Tor Browser's built-in meek line: meek_lite alone may leave out the fingerprint.
  ['meek_lite 192.0.2.20:80 url=https://1603026938.rsc.cdn77.org front=www.phpmyadmin.net utls=HelloRandomizedALPN', 'meek_lite'],
  // A self-hosted meek server over plain HTTP (the e2e test's); only meek_lite takes http://.
  [`meek_lite 10.99.0.66:80 ${FP} url=http://10.99.0.66/`, 'meek_lite'],
  [`meek-azure 192.0.2.18:80 ${FP} url=https://meek.example/ front=ajax.example.com`, 'meek_lite'],
  [`webtunnel [2001:db8::2]:443 ${FP} url=https://wt.example/secret-path ver=0.0.1`, 'webtunnel'],
];

const BAD: Array<[string, RegExp]> = [
  ['', /empty/],
  ['192.0.2.1', /address/],
  ['192.0.2.1:0', /address/],
  ['300.0.2.1:443', /address/],
  [`192.0.2.1:443 XYZ`, /fingerprint/],
  [`192.0.2.1:443 ${FP} extra=1`, /vanilla/],
  [`obfs4 192.0.2.1:443 cert=${CERT} iat-mode=0`, /fingerprint/],
  [`obfs4 192.0.2.1:443 ${FP} iat-mode=0`, /needs cert=/],
  [`obfs4 192.0.2.1:443 ${FP} cert=${CERT} iat-mode=0 iat-mode=1`, /repeats/],
  [`obfs4 192.0.2.1:443 ${FP} cert=${CERT} iat-mode=0 evil=1`, /unknown obfs4 argument/],
  [`obfs4 192.0.2.1:443 ${FP} cert=${CERT}\niat-mode=0`, /single line/],
  [`fte 192.0.2.1:443 ${FP}`, /unknown transport/],
  [`snowflake 192.0.2.3:80 ${FP} url=http://broker.example/`, /invalid value for url/],
  [`meek_lite 192.0.2.18:80 ${FP}`, /needs url=/],
  ['meek_lite 192.0.2.18:80', /needs url=/],
  ['meek_lite 192.0.2.18:80 url=ftp://meek.example/', /invalid value for url/],
  [`webtunnel 192.0.2.5:443 ${FP} url=http://wt.example/path`, /invalid value for url/],
  ['snowflake 192.0.2.3:80 url=https://broker.example/', /needs a fingerprint for snowflake/],
  ['webtunnel 192.0.2.5:443 url=https://wt.example/path', /needs a fingerprint for webtunnel/],
];

for (const [line, transport] of GOOD) {
  test(`bridge line accepted: ${line.slice(0, 50)}`, () => {
    const r = parseBridgeLine(line);
    assert.ok(r.ok, !r.ok ? r.error : '');
    if (!r.ok) return;
    assert.equal(r.bridge.transport, transport);
    // Formatting is stable: format(parse(format(x))) == format(x).
    const again = parseBridgeLine(formatBridgeLine(r.bridge));
    assert.ok(again.ok);
    if (again.ok) assert.equal(formatBridgeLine(again.bridge), formatBridgeLine(r.bridge));
  });
}

for (const [line, why] of BAD) {
  test(`bridge line refused (${why.source}): ${JSON.stringify(line).slice(0, 50)}`, () => {
    const r = parseBridgeLine(line);
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.error, why);
  });
}

test('property: parsing never throws, and accepted lines format without unsafe characters', () => {
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
    const r = parseBridgeLine(s);
    if (r.ok) assert.ok(!/[\u0000-\u001f"#\\]/.test(formatBridgeLine(r.bridge)));
  }), { numRuns: 2000 });
});
