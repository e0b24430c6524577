import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { moduleLoadOrder, parseModulesBuiltin, parseModulesDep, WANTED_MODULES } from '../../src/kernel-modules.ts';

// The shape of Debian 6.1's modules.dep for the virtio NIC (field-notes: virtio_ring before virtio).
const DEP = `kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
`;

describe('kernel module load order', () => {
  const dep = parseModulesDep(DEP);

  it('loads every dependency before its user, each once', () => {
    const order = moduleLoadOrder([{ name: 'virtio_pci' }, { name: 'virtio_net' }, { name: 'virtio_rng' }], dep, new Set());
    const names = order.map((p) => p.split('/').at(-1));
    assert.equal(new Set(names).size, names.length);
    const before = (a: string, b: string) => assert.ok(names.indexOf(a) < names.indexOf(b), `${a} must load before ${b}: ${names.join(' ')}`);
    before('virtio_ring.ko', 'virtio.ko');
    before('virtio.ko', 'virtio_pci.ko');
    before('failover.ko', 'net_failover.ko');
    before('net_failover.ko', 'virtio_net.ko');
    assert.equal(names.at(-1), 'virtio-rng.ko', 'file names keep their dashes; module names use underscores');
  });

  it('skips built-in modules and optional absent ones, and fails on a missing required one', () => {
    assert.deepEqual(moduleLoadOrder([{ name: 'virtio' }], dep, parseModulesBuiltin('kernel/drivers/virtio/virtio.ko\n')), []);
    assert.deepEqual(moduleLoadOrder([{ name: 'nope', optional: true }], dep, new Set()), []);
    assert.throws(() => moduleLoadOrder([{ name: 'nope' }], dep, new Set()), /nope not found/);
  });

  it('every architecture asks for the firewall, fw_cfg, virtio and power-button modules', () => {
    for (const list of Object.values(WANTED_MODULES)) {
      const names = list.map((m) => m.name);
      for (const n of ['nf_tables', 'nft_ct', 'nft_chain_nat', 'nft_redir', 'qemu_fw_cfg', 'virtio_net', 'virtio_blk', 'virtio_rng', 'ext4', 'evdev']) assert.ok(names.includes(n), n);
    }
  });
});
