/** `torvm gui` never opens a browser as root, and settings changes are pure and complete. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openerCommand } from '../../src/cli/commands/gui.ts';
import { applySettings, settingsOf } from '../../src/api/routes-gui.ts';
import { defaultConfig } from '../../src/core/config.ts';
import { linuxDefaults } from '../../src/platform/linux/defaults.ts';

const URL_ = 'http://127.0.0.1:4242/#token=abc';

describe('openerCommand', () => {
  it('under sudo, runs xdg-open as the desktop user, with their session bus', () => {
    const cmd = openerCommand(URL_, { platform: 'linux', uid: 0, sudoUser: 'alice', sudoUid: 1000 });
    assert.deepEqual(cmd, {
      file: 'runuser', argv: ['-u', 'alice', '--', 'xdg-open', URL_],
      env: { XDG_RUNTIME_DIR: '/run/user/1000', DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/user/1000/bus' },
    });
  });

  it('as plain root (no SUDO_USER, or SUDO_USER=root) opens nothing: the URL is printed instead', () => {
    assert.equal(openerCommand(URL_, { platform: 'linux', uid: 0, sudoUser: undefined, sudoUid: undefined }), null);
    assert.equal(openerCommand(URL_, { platform: 'linux', uid: 0, sudoUser: 'root', sudoUid: 0 }), null);
    assert.equal(openerCommand(URL_, { platform: 'darwin', uid: 0, sudoUser: undefined, sudoUid: undefined }), null);
  });

  it('refuses a SUDO_USER that is not a user name', () => {
    assert.equal(openerCommand(URL_, { platform: 'linux', uid: 0, sudoUser: '-rf', sudoUid: 1000 }), null);
    assert.equal(openerCommand(URL_, { platform: 'linux', uid: 0, sudoUser: 'a b', sudoUid: 1000 }), null);
  });

  it('as a normal user runs the opener directly', () => {
    assert.deepEqual(openerCommand(URL_, { platform: 'linux', uid: 1000, sudoUser: undefined, sudoUid: undefined }), { file: 'xdg-open', argv: [URL_], env: {} });
    assert.deepEqual(openerCommand(URL_, { platform: 'darwin', uid: 0, sudoUser: 'bob', sudoUid: 501 })?.argv, ['-u', 'bob', '--', 'open', URL_]);
  });
});

describe('applySettings', () => {
  it('changes only the given fields and leaves the input untouched', () => {
    const config = defaultConfig(linuxDefaults);
    const before = JSON.stringify(config);
    const next = applySettings(config, { lockdown: true, accel: 'tcg' });
    assert.equal(JSON.stringify(config), before);
    assert.deepEqual(settingsOf(next), { ...settingsOf(config), lockdown: true, accel: 'tcg' });
    assert.deepEqual({ ...next, vm: { ...next.vm, accel: config.vm.accel }, network: { ...next.network, lockdown: false } }, config);
  });
});
