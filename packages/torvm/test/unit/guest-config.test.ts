import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import fc from 'fast-check';
import { defaultConfig, validateConfig } from '../../src/core/config.ts';
import { renderGuestSettings, DEFAULT_GUEST_NICS } from '../../src/core/guest-config.ts';
import { GUEST } from '../../src/core/guest.ts';
import { isTorvmError } from '../../src/core/errors.ts';

const DEFAULTS = { stateDir: '/var/lib/torvm', imageDir: '/var/lib/torvm/image', qemuBinary: '/usr/bin/qemu-system-x86_64', apiSocketPath: '/run/torvm/api.sock' };
const GOLDEN_DIR = new URL('./golden/guest/', import.meta.url);

function checkGolden(name: string, text: string): void {
  const file = new URL(name, GOLDEN_DIR);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    if (process.env.CI && process.env.UPDATE_GOLDEN !== '1') assert.fail(`golden file ${name} is missing`);
    writeFileSync(file, text);
  }
  assert.equal(text, readFileSync(file, 'utf8'), `golden ${name} differs (UPDATE_GOLDEN=1 to accept)`);
}

/** The keys image/guest/init accepts (its `case` list); anything else stops the guest. */
const INIT_KEYS = ['TORVM_GUEST_FORMAT', 'LAN_ADDRESS', 'LAN_PREFIX', 'HOST_ADDRESS', 'HOST_MAC', 'LAN_MAC', 'WAN_MAC', 'SOCKS_PORT', 'CONTROL_PORT', 'TRANS_PORT', 'DNS_PORT'];

describe('guest settings (fw_cfg guest.env)', () => {
  it('renders the defaults (golden)', () => {
    checkGolden('default.env', renderGuestSettings(defaultConfig(DEFAULTS), { ...DEFAULT_GUEST_NICS, hostMac: '02:00:00:00:00:01' }));
  });

  it('renders custom ports and addresses, and an empty HOST_MAC when unknown', () => {
    const r = validateConfig({ configVersion: 1, network: { hostAddress: '172.16.5.6', vmAddress: '172.16.5.5' }, tor: { socksPort: 19050, transPort: 19040 } }, DEFAULTS);
    assert.ok(r.ok);
    checkGolden('custom.env', renderGuestSettings(r.config, DEFAULT_GUEST_NICS));
  });

  it('uses only the keys the guest init knows, one KEY=value per line', () => {
    const text = renderGuestSettings(defaultConfig(DEFAULTS), DEFAULT_GUEST_NICS);
    const keys = text.trimEnd().split('\n').map((l) => l.split('=')[0]);
    assert.deepEqual(keys, INIT_KEYS);
    const init = readFileSync(new URL('../../../../image/guest/init', import.meta.url), 'utf8');
    for (const key of INIT_KEYS) assert.match(init, new RegExp(`\\b${key}\\b`), `init does not handle ${key}`);
  });

  it('refuses any MAC outside its grammar, and equal wan/lan MACs', () => {
    const config = defaultConfig(DEFAULTS);
    fc.assert(fc.property(fc.string({ maxLength: 20 }), (mac) => {
      fc.pre(!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac));
      assert.throws(() => renderGuestSettings(config, { ...DEFAULT_GUEST_NICS, hostMac: mac }), (e) => isTorvmError(e, 'ERR_UNSAFE_VALUE'));
    }));
    assert.throws(() => renderGuestSettings(config, { wanMac: '01:00:5e:00:00:01', lanMac: DEFAULT_GUEST_NICS.lanMac }), /WAN_MAC/);
    assert.throws(() => renderGuestSettings(config, { wanMac: DEFAULT_GUEST_NICS.lanMac, lanMac: DEFAULT_GUEST_NICS.lanMac }), /different MACs/);
  });

  it('is delivered under the fw_cfg name the guest init reads', () => {
    const init = readFileSync(new URL('../../../../image/guest/init', import.meta.url), 'utf8');
    const base = /^FWCFG=\/sys\/firmware\/qemu_fw_cfg\/by_name\/(\S+)$/m.exec(init)?.[1];
    for (const name of Object.values(GUEST.fwCfg)) {
      const leaf = name.slice(name.lastIndexOf('/') + 1);
      assert.equal(name, `${base}/${leaf}`);
      assert.ok(init.includes(`$FWCFG/${leaf}/raw`), `init does not read ${name}`);
    }
  });
});
