/**
 * The QEMU command line, rendered from a typed launch spec. PURE: no fs, no
 * process, no OS probing; the host OS comes in as a parameter.
 *
 * Safety rule: QEMU splits `-opt key=val,key=val` on commas (a doubled comma
 * is a literal one). Rather than escape, every string that lands in such an
 * option is checked against a whitelist and refused with ERR_UNSAFE_VALUE if
 * it holds a comma, a control character or anything else outside its
 * grammar. A value is therefore either refused or confined to its own field
 * (property-tested in test/unit/vm-qemu-args.test.ts).
 *
 * Version notes (we target QEMU >= 7.2, Debian bookworm; the seed assumed 8.0):
 * - `-runas USER` is what 7.2 has; 9.1 deprecates it for `-run-with user=USER`.
 *   Use `qemuFeatures.runWith` to pick the new spelling on new QEMUs.
 * - In 7.2 the seccomp filter (`-sandbox`) is installed BEFORE `-runas` drops
 *   privileges, so `elevateprivileges=deny` kills QEMU with SIGSYS ("Bad system
 *   call", checked on this machine). With `runAs` we therefore render
 *   `elevateprivileges=allow`: the drop to the unprivileged user is the bigger
 *   win, and set*uid back to root is impossible after it anyway.
 * - `-action panic=...` and `netdev vmnet-host` exist since 6.0 / 7.1.
 * - `rng-builtin` (4.2+) is used instead of `rng-random` so no host path is needed.
 */
import { TorvmError } from '../core/errors.ts';
import { checkInterfaceName } from '../core/validators.ts';

export type QemuArch = 'x86_64' | 'aarch64';
export type QemuAccel = 'kvm' | 'hvf' | 'whpx' | 'tcg';
export type HostOs = 'linux' | 'darwin' | 'win32';

/** The LAN side of the VM: a TAP (Linux) or vmnet-host (macOS). */
export type LanSpec = { kind: 'tap'; ifname: string } | { kind: 'vmnet-host' } | { kind: 'none' };

/** Everything QEMU needs for one TorVM launch. */
export interface QemuLaunchSpec {
  arch: QemuArch;
  accel: QemuAccel;
  memoryMiB: number;
  cpus: number;
  kernelPath: string;
  initrdPath: string;
  kernelCmdline: string;
  stateDiskPath: string;
  /**
   * The image's read-only system disk (squashfs), used with the small
   * initramfs: the guest then needs ~25 MB less RAM. Its serial lets the
   * guest find it.
   */
  systemDisk?: { path: string; serial: string };
  /** `none` is for tests only: a VM with just the (restricted) wan NIC. */
  lan: LanSpec;
  lanMac: string;
  wanMac: string;
  /** User-mode networking (slirp). `restrict: true` cuts it off from everything outside the guest. */
  wan: { restrict: boolean };
  /** Config and secrets travel here (`-fw_cfg name=...,file=...`), never on the kernel cmdline. */
  fwCfg: Array<{ name: string; file: string }>;
  /** Unix socket of QMP (Linux, macOS). */
  qmpSocketPath: string;
  /** Windows only: QMP listens on 127.0.0.1:PORT (Node cannot connect to AF_UNIX paths there). */
  qmpTcpPort?: number;
  /**
   * Where the serial console goes when `serialSocketPath` is not set: QEMU
   * appends to this file itself. With `serialSocketPath`, the supervisor streams
   * the socket and writes this file itself (size-capped); QEMU never sees it.
   */
  serialLogPath: string;
  /** Serial console as a unix server socket the supervisor connects to (streamable). */
  serialSocketPath?: string;
  pidFilePath: string;
  /** Drop to this user after opening devices (Linux: needed because /dev/net/tun is 0600 root). */
  runAs?: string;
  /** Linux seccomp sandbox (`-sandbox on,...`); ignored on hosts whose QEMU has no seccomp. */
  sandbox: boolean;
  /** Start with the CPUs stopped (`-S`) so the supervisor can attach the serial console first, then `cont`. */
  startPaused?: boolean;
  /** Features of the installed QEMU that change the spelling of options. */
  qemuFeatures?: { runWith?: boolean };
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const DISK_SERIAL = /^[a-z0-9-]{1,20}$/;

function checkSerial(serial: string): string {
  if (!DISK_SERIAL.test(serial)) throw new TorvmError('ERR_UNSAFE_VALUE', `QEMU: disk serial ${JSON.stringify(serial)} is not 1–20 of a-z, 0-9, "-"`);
  return serial;
}
const FW_CFG_NAME = /^opt\/[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;
const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
const CONTROL = /[\u0000-\u001f\u007f]/;
/** sun_path is 108 bytes including the NUL on Linux (104 on macOS). */
const MAX_SOCKET_PATH_BYTES = 103;
/** x86 COMMAND_LINE_SIZE is 2048 including the NUL. */
const MAX_CMDLINE = 2047;

function unsafe(field: string, why: string): never {
  throw new TorvmError('ERR_UNSAFE_VALUE', `QEMU argument ${field} ${why}`, { details: { field } });
}

/** A host path that goes into a QEMU option: absolute, no comma, no control or quoting characters. */
function checkPath(field: string, value: string, hostOs: HostOs): string {
  if (typeof value !== 'string' || value.length === 0) unsafe(field, 'must be a non-empty path');
  if (value.length > 1024) unsafe(field, 'must be at most 1024 characters');
  if (CONTROL.test(value)) unsafe(field, 'must not contain control characters');
  if (value.includes(',')) unsafe(field, 'must not contain a comma (QEMU splits options on commas)');
  // Windows installs live under "C:\\Program Files"; a space is harmless in an argv element.
  const whitespace = hostOs === 'win32' ? /[\t\n\r\f\v]/ : /\s/;
  if (whitespace.test(value) || /["'#=]/.test(value)) unsafe(field, 'must not contain whitespace, quotes, "#" or "="');
  if (hostOs === 'win32') {
    if (!/^[A-Za-z]:\\/.test(value) || value.includes('/')) unsafe(field, 'must be an absolute Windows path like C:\\dir\\file');
    if (value.split('\\').includes('..')) unsafe(field, 'must not contain ".." components');
  } else {
    if (!value.startsWith('/')) unsafe(field, 'must be an absolute path');
    if (value.includes('\\')) unsafe(field, 'must not contain backslashes');
    if (value.split('/').includes('..')) unsafe(field, 'must not contain ".." components');
  }
  return value;
}

function checkSocketPath(field: string, value: string, hostOs: HostOs): string {
  checkPath(field, value, hostOs);
  if (Buffer.byteLength(value) > MAX_SOCKET_PATH_BYTES) unsafe(field, `must be at most ${MAX_SOCKET_PATH_BYTES} bytes (unix socket path limit)`);
  return value;
}

function checkMac(field: string, value: string): string {
  if (typeof value !== 'string' || !MAC.test(value)) unsafe(field, 'must be a MAC address like 52:54:00:12:34:56 (lower-case hex)');
  if ((parseInt(value.slice(0, 2), 16) & 1) === 1) unsafe(field, 'must be a unicast MAC address');
  return value;
}

function checkInt(field: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) unsafe(field, `must be an integer ${min}–${max}`);
  return value;
}

function machineFor(arch: QemuArch, accel: QemuAccel): string[] {
  // `-cpu host` needs a hardware accelerator; TCG and WHPX emulate a generic modern CPU.
  const cpu = accel === 'kvm' || accel === 'hvf' ? 'host' : 'max';
  const machine = arch === 'x86_64' ? 'q35' : 'virt';
  return ['-machine', `${machine},accel=${accel}`, '-cpu', cpu];
}

function sandboxArgs(spec: QemuLaunchSpec, hostOs: HostOs): string[] {
  // Only Linux builds of QEMU have seccomp.
  if (!spec.sandbox || hostOs !== 'linux') return [];
  const elevate = spec.runAs === undefined ? 'deny' : 'allow'; // see the version notes at the top
  return ['-sandbox', `on,obsolete=deny,elevateprivileges=${elevate},spawn=deny,resourcecontrol=deny`];
}

function runAsArgs(spec: QemuLaunchSpec, hostOs: HostOs): string[] {
  if (spec.runAs === undefined) return [];
  if (!USER_NAME.test(spec.runAs)) unsafe('runAs', 'must be a user name of a–z, 0–9, "_" or "-"');
  if (hostOs === 'win32') unsafe('runAs', 'is not supported on Windows');
  return spec.qemuFeatures?.runWith ? ['-run-with', `user=${spec.runAs}`] : ['-runas', spec.runAs];
}

function lanArgs(spec: QemuLaunchSpec, hostOs: HostOs): string[] {
  const lan = spec.lan;
  switch (lan.kind) {
    case 'none':
      return [];
    case 'tap': {
      if (hostOs !== 'linux') unsafe('lan', 'kind "tap" is supported on Linux only');
      const problem = typeof lan.ifname === 'string' ? checkInterfaceName(lan.ifname) : 'must be a string';
      if (problem) unsafe('lan.ifname', problem);
      // script=no/downscript=no: the controller configures the TAP itself; QEMU must never run a script.
      return ['-netdev', `tap,id=lan,ifname=${lan.ifname},script=no,downscript=no`,
        '-device', `virtio-net-pci,netdev=lan,mac=${checkMac('lanMac', spec.lanMac)}`];
    }
    case 'vmnet-host':
      if (hostOs !== 'darwin') unsafe('lan', 'kind "vmnet-host" is supported on macOS only');
      return ['-netdev', 'vmnet-host,id=lan',
        '-device', `virtio-net-pci,netdev=lan,mac=${checkMac('lanMac', spec.lanMac)}`];
    default:
      return unsafe('lan', 'has an unknown kind');
  }
}

function qmpArgs(spec: QemuLaunchSpec, hostOs: HostOs): string[] {
  if (hostOs === 'win32') {
    const port = checkInt('qmpTcpPort', spec.qmpTcpPort ?? Number.NaN, 1, 65535);
    return ['-qmp', `tcp:127.0.0.1:${port},server=on,wait=off`];
  }
  return ['-qmp', `unix:${checkSocketPath('qmpSocketPath', spec.qmpSocketPath, hostOs)},server=on,wait=off`];
}

function serialArgs(spec: QemuLaunchSpec, hostOs: HostOs): string[] {
  const logPath = checkPath('serialLogPath', spec.serialLogPath, hostOs);
  const chardev = spec.serialSocketPath === undefined
    ? `file,id=serial0,path=${logPath},append=on`
    : `socket,id=serial0,path=${checkSocketPath('serialSocketPath', spec.serialSocketPath, hostOs)},server=on,wait=off`;
  return ['-chardev', chardev, '-serial', 'chardev:serial0'];
}

/**
 * Renders the full QEMU argv (without the binary itself) for one launch.
 * Pure and deterministic. Throws TorvmError ERR_UNSAFE_VALUE when any field
 * falls outside its grammar; never escapes.
 */
export function buildQemuArgs(spec: QemuLaunchSpec, hostOs: HostOs): string[] {
  if (spec.arch !== 'x86_64' && spec.arch !== 'aarch64') unsafe('arch', 'must be x86_64 or aarch64');
  if (!['kvm', 'hvf', 'whpx', 'tcg'].includes(spec.accel)) unsafe('accel', 'must be kvm, hvf, whpx or tcg');
  if (spec.accel === 'kvm' && hostOs !== 'linux') unsafe('accel', 'kvm exists on Linux only');
  if (spec.accel === 'hvf' && hostOs !== 'darwin') unsafe('accel', 'hvf exists on macOS only');
  if (spec.accel === 'whpx' && hostOs !== 'win32') unsafe('accel', 'whpx exists on Windows only');
  if (typeof spec.kernelCmdline !== 'string' || CONTROL.test(spec.kernelCmdline) || spec.kernelCmdline.length > MAX_CMDLINE) {
    unsafe('kernelCmdline', `must be at most ${MAX_CMDLINE} characters without control characters`);
  }
  if (typeof spec.wan?.restrict !== 'boolean') unsafe('wan.restrict', 'must be a boolean');
  const fwCfgNames = new Set<string>();
  const fwCfg = spec.fwCfg.flatMap(({ name, file }, i) => {
    // FW_CFG_MAX_FILE_PATH is 56 bytes including the NUL.
    if (typeof name !== 'string' || !FW_CFG_NAME.test(name) || name.length > 55) unsafe(`fwCfg[${i}].name`, 'must look like opt/org.example/name (at most 55 characters)');
    if (fwCfgNames.has(name)) unsafe(`fwCfg[${i}].name`, 'is given twice');
    fwCfgNames.add(name);
    return ['-fw_cfg', `name=${name},file=${checkPath(`fwCfg[${i}].file`, file, hostOs)}`];
  });
  const pvpanic = spec.arch === 'x86_64' ? 'pvpanic' : 'pvpanic-pci';

  return [
    // 1. Nothing implicit: no default devices, no config files, no display.
    '-nodefaults', '-no-user-config', '-display', 'none',
    ...machineFor(spec.arch, spec.accel),
    '-m', String(checkInt('memoryMiB', spec.memoryMiB, 64, 4096)),
    '-smp', String(checkInt('cpus', spec.cpus, 1, 8)),
    // 2. A guest reboot (panic=1) or panic ends QEMU; the supervisor decides whether to restart.
    '-action', 'reboot=shutdown,shutdown=poweroff,panic=shutdown',
    '-device', pvpanic,
    // 3. Direct kernel boot.
    '-kernel', checkPath('kernelPath', spec.kernelPath, hostOs),
    '-initrd', checkPath('initrdPath', spec.initrdPath, hostOs),
    '-append', spec.kernelCmdline,
    // 4. State disk: raw, exclusively locked by QEMU (locking=on is the default; stated so it stays).
    '-drive', `if=none,id=state,format=raw,file=${checkPath('stateDiskPath', spec.stateDiskPath, hostOs)},file.locking=on,cache=writeback,discard=unmap`,
    '-device', 'virtio-blk-pci,drive=state',
    ...(spec.systemDisk ? [
      '-drive', `if=none,id=system,format=raw,readonly=on,file=${checkPath('systemDisk.path', spec.systemDisk.path, hostOs)}`,
      '-device', `virtio-blk-pci,drive=system,serial=${checkSerial(spec.systemDisk.serial)}`,
    ] : []),
    // 5. Entropy from QEMU's own CSPRNG.
    '-object', 'rng-builtin,id=rng0',
    '-device', 'virtio-rng-pci,rng=rng0',
    // 6. NICs. wan comes first (eth0 in the guest), lan second (eth1); the MACs identify them too.
    '-netdev', `user,id=wan,ipv6=off,restrict=${spec.wan.restrict ? 'on' : 'off'}`,
    '-device', `virtio-net-pci,netdev=wan,mac=${checkMac('wanMac', spec.wanMac)}`,
    ...lanArgs(spec, hostOs),
    // 7. Config and secrets.
    ...fwCfg,
    // 8. Control and observation channels.
    ...qmpArgs(spec, hostOs),
    ...serialArgs(spec, hostOs),
    '-pidfile', checkPath('pidFilePath', spec.pidFilePath, hostOs),
    ...(spec.startPaused ? ['-S'] : []),
    // 9. Confinement last, so it reads as the final word.
    ...runAsArgs(spec, hostOs),
    ...sandboxArgs(spec, hostOs),
  ];
}
