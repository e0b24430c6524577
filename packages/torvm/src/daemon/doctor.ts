/**
 * `torvm doctor`: checks that this machine can run TorVM, and says how to
 * fix what is missing. Each check is independent; one failing never stops
 * the others.
 */
import { access, constants, stat } from 'node:fs/promises';
import type { TorvmConfig } from '../core/config.ts';
import type { CommandRunner } from '../platform/exec.ts';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  /** Required checks decide the exit code; advisory ones only inform. */
  required: boolean;
  detail: string;
  fix?: string;
}

export interface DoctorReport {
  ok: boolean;
  checks: DoctorCheck[];
}

interface DoctorDeps {
  runner: CommandRunner;
  config: TorvmConfig;
  configSource: string;
  uid: number | undefined;
}

type Probe = (deps: DoctorDeps) => Promise<Omit<DoctorCheck, 'name' | 'required'>>;

async function exists(path: string): Promise<boolean> {
  try {
    await access(path, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

const toolProbe = (file: string, args: string[], pkg: string): Probe => async ({ runner }) => {
  try {
    const r = await runner.run(file, args, { timeoutMs: 5000 });
    return { ok: true, detail: (r.stdout || r.stderr).split('\n')[0]?.trim() ?? '' };
  } catch (err) {
    return { ok: false, detail: (err as Error).message.split('\n')[0] ?? '', fix: `apt-get install ${pkg}` };
  }
};

/** The checks, in the order they are shown. */
const CHECKS: Array<{ name: string; required: boolean; probe: Probe }> = [
  {
    name: 'node', required: true, probe: async () => {
      const major = Number(process.versions.node.split('.')[0]);
      return major >= 20 ? { ok: true, detail: `Node.js ${process.versions.node}` } : { ok: false, detail: `Node.js ${process.versions.node} is older than 20`, fix: 'install Node.js 20 or later' };
    },
  },
  {
    name: 'config', required: true, probe: async ({ configSource }) => ({ ok: true, detail: `valid (${configSource})` }),
  },
  {
    name: 'root', required: false, probe: async ({ uid }) => uid === 0
      ? { ok: true, detail: 'running as root' }
      : { ok: false, detail: 'not running as root: `torvm up` needs root to change host networking', fix: 'run `sudo torvm up`' },
  },
  {
    name: 'qemu', required: true, probe: async (deps) => {
      const r = await toolProbe(deps.config.vm.qemuBinary, ['--version'], 'qemu-system-x86')(deps);
      return r.ok ? { ...r, detail: `${deps.config.vm.qemuBinary}: ${r.detail}` } : r;
    },
  },
  { name: 'nftables', required: true, probe: toolProbe('nft', ['--version'], 'nftables') },
  { name: 'iproute2', required: true, probe: toolProbe('ip', ['-V'], 'iproute2') },
  {
    name: 'tun', required: true, probe: async () => (await exists('/dev/net/tun'))
      ? { ok: true, detail: '/dev/net/tun exists' }
      : { ok: false, detail: '/dev/net/tun is missing', fix: 'modprobe tun' },
  },
  {
    name: 'kvm', required: false, probe: async () => (await exists('/dev/kvm'))
      ? { ok: true, detail: '/dev/kvm exists (whether KVM really works is probed when the VM starts; TCG is the fallback)' }
      : { ok: false, detail: '/dev/kvm is missing: the VM will use TCG (slower)', fix: 'enable virtualization, or accept TCG' },
  },
  {
    name: 'image', required: true, probe: async ({ config }) => {
      const manifest = `${config.vm.imageDir}/manifest.json`;
      try {
        await stat(manifest);
        return { ok: true, detail: manifest };
      } catch {
        return { ok: false, detail: `no VM image at ${config.vm.imageDir}`, fix: `torvm image build --out ${config.vm.imageDir}` };
      }
    },
  },
  {
    name: 'torvm-user', required: true, probe: async ({ runner }) => {
      try {
        await runner.run('id', ['-u', 'torvm-qemu'], { timeoutMs: 5000 });
        return { ok: true, detail: 'the torvm-qemu system user exists' };
      } catch {
        return { ok: false, detail: 'the torvm-qemu system user (which QEMU runs as) does not exist', fix: 'groupadd --system torvm-qemu && useradd --system --gid torvm-qemu --no-create-home --shell /usr/sbin/nologin torvm-qemu (TorVM also creates it at start)' };
      }
    },
  },
];

export async function runDoctor(deps: DoctorDeps): Promise<DoctorReport> {
  const checks = await Promise.all(CHECKS.map(async ({ name, required, probe }) => {
    try {
      return { name, required, ...(await probe(deps)) };
    } catch (err) {
      return { name, required, ok: false, detail: `the check itself failed: ${(err as Error).message}` };
    }
  }));
  return { ok: checks.every((c) => c.ok || !c.required), checks };
}
