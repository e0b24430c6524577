/**
 * Picks the kernel modules the guest loads and computes their load order from
 * the kernel's own dependency data (depmod's modules.dep), so a dependency
 * like virtio_ring always comes before virtio.
 */
import type { GuestArch } from '../../packages/torvm/src/core/guest.ts';

export interface WantedModule {
  name: string;
  /** Not every kernel build has it; skip quietly when absent. */
  optional?: boolean;
}

/**
 * In load order of intent. crc32c_generic comes first because ext4 and
 * libcrc32c look the algorithm up by name at runtime (a soft dependency
 * depmod does not record).
 */
export const WANTED_MODULES: Record<GuestArch, readonly WantedModule[]> = {
  x86_64: [
    { name: 'crc32c_generic' }, { name: 'crc32c_intel', optional: true },
    { name: 'qemu_fw_cfg' }, { name: 'loop' }, { name: 'squashfs' },
    { name: 'virtio_pci' }, { name: 'virtio_net' }, { name: 'virtio_blk' }, { name: 'virtio_rng' },
    { name: 'ext4' },
    { name: 'nf_tables' }, { name: 'nft_ct' }, { name: 'nft_chain_nat' }, { name: 'nft_redir' },
    { name: 'evdev' }, { name: 'button' },
  ],
  aarch64: [
    { name: 'crc32c_generic' }, { name: 'crc32_ce', optional: true },
    { name: 'qemu_fw_cfg' }, { name: 'loop' }, { name: 'squashfs' },
    { name: 'virtio_mmio', optional: true }, { name: 'virtio_pci' }, { name: 'virtio_net' }, { name: 'virtio_blk' }, { name: 'virtio_rng' },
    { name: 'ext4' },
    { name: 'nf_tables' }, { name: 'nft_ct' }, { name: 'nft_chain_nat' }, { name: 'nft_redir' },
    // QEMU virt's power button is a PL061 GPIO line read by gpio_keys.
    { name: 'evdev' }, { name: 'gpio_pl061' }, { name: 'gpio_keys' },
  ],
};

const modName = (path: string) => path.slice(path.lastIndexOf('/') + 1).replace(/\.ko(\.[a-z]+)?$/, '').replace(/-/g, '_');

/** Parses modules.dep ("kernel/a.ko: kernel/b.ko kernel/c.ko") into name -> {path, deps}. */
export function parseModulesDep(text: string): Map<string, { path: string; deps: string[] }> {
  const out = new Map<string, { path: string; deps: string[] }>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const path = line.slice(0, colon).trim();
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter((d) => d.length > 0).map(modName);
    out.set(modName(path), { path, deps });
  }
  return out;
}

/** Names of built-in modules (modules.builtin lists their paths). */
export function parseModulesBuiltin(text: string): Set<string> {
  return new Set(text.split('\n').filter((l) => l.trim().length > 0).map(modName));
}

/**
 * The module files to load, dependencies first, each once. Wanted modules that
 * are built in are skipped; a missing required module is an error.
 */
export function moduleLoadOrder(wanted: readonly WantedModule[], dep: Map<string, { path: string; deps: string[] }>, builtin: Set<string>): string[] {
  const order: string[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const visit = (name: string, chain: string[]) => {
    if (done.has(name) || builtin.has(name)) return;
    const entry = dep.get(name);
    if (!entry) throw new Error(`kernel module ${name} not found (needed by ${chain.join(' <- ') || 'the guest'})`);
    if (visiting.has(name)) throw new Error(`kernel module dependency cycle at ${name}`);
    visiting.add(name);
    for (const d of entry.deps) visit(d, [name, ...chain]);
    visiting.delete(name);
    done.add(name);
    order.push(entry.path);
  };
  for (const m of wanted) {
    if (m.optional && !dep.has(m.name) && !builtin.has(m.name)) continue;
    visit(m.name, []);
  }
  return order;
}
