/**
 * Turns the stderr of a QEMU that died during startup into a coded error
 * (miniflare's StartupLogBuffer). PURE.
 */
import { TorvmError } from '../core/errors.ts';

interface Rule { pattern: RegExp; build: (stderr: string, tail: string) => TorvmError }

const RULES: Rule[] = [
  {
    pattern: /Failed to get "(write|consistent read)" lock|Is another process using the image/,
    build: (_s, tail) => new TorvmError('ERR_VM', `another QEMU already uses the state disk: ${tail}`, { hint: 'stop the other TorVM VM first' }),
  },
  {
    pattern: /failed to set MSR|Could not access KVM kernel module|KVM is not supported|failed to initialize kvm|HV_ERROR|WHPX: No accelerator found|hvf.*(fail|error)/i,
    build: (_s, tail) => new TorvmError('ERR_ACCEL_UNAVAILABLE', `the accelerator failed: ${tail}`, { hint: 'set vm.accel to "auto" or "tcg"' }),
  },
  {
    pattern: /could not load (kernel|initrd)|could not open (kernel|initrd)|Could not open option rom|qemu: could not load/i,
    build: (_s, tail) => new TorvmError('ERR_IMAGE_MISSING', `QEMU cannot load the VM image: ${tail}`, { hint: 'reinstall TorVM or rebuild the image (torvm image build)' }),
  },
  {
    pattern: /could not configure \/dev\/net\/tun|tap.*(Operation not permitted|Device or resource busy|No such device)|vmnet/i,
    build: (_s, tail) => new TorvmError('ERR_NETWORK', `QEMU cannot open the LAN interface: ${tail}`),
  },
  {
    pattern: /getpwnam|User .* not found|failed to (setgid|setuid|initgroups)/i,
    build: (_s, tail) => new TorvmError('ERR_VM', `QEMU cannot drop to its unprivileged user: ${tail}`, { hint: 'run `torvm daemon` as root so it can create the torvm system user' }),
  },
];

/** The most telling lines of QEMU's stderr. */
export function stderrTail(stderr: string, lines = 5): string {
  return stderr.split('\n').map((l) => l.trim()).filter(Boolean).slice(-lines).join(' | ').slice(0, 1000);
}

/** A coded error for a QEMU that exited before QMP came up. */
export function classifyStartFailure(stderr: string, exit: { code: number | null; signal: string | null }): TorvmError {
  const tail = stderrTail(stderr) || `exit ${exit.code ?? exit.signal ?? 'unknown'}`;
  for (const rule of RULES) {
    if (rule.pattern.test(stderr)) {
      const err = rule.build(stderr, tail);
      return new TorvmError(err.code, err.message, { hint: err.hint, details: { exitCode: exit.code, signal: exit.signal, stderr: stderr.slice(-4000) } });
    }
  }
  return new TorvmError('ERR_VM', `QEMU exited during startup (${exit.signal ?? `exit ${exit.code}`}): ${tail}`, {
    details: { exitCode: exit.code, signal: exit.signal, stderr: stderr.slice(-4000) },
  });
}
