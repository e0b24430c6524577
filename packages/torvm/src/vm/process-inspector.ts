/**
 * Identity checks on processes by pid, so that a pid from a pidfile is only
 * adopted or killed when it is still OUR QEMU (pids are reused).
 * The per-OS inspector comes from platform/ (Linux reads /proc).
 */

export interface ProcessInspector {
  /** True if the process exists and is not a zombie. */
  isAlive(pid: number): boolean;
  /** The argv of a live process, or null. */
  commandLine(pid: number): string[] | null;
}

/**
 * True if `argv` is a QEMU started with exactly this pidfile and QMP socket:
 * `-pidfile <pidFilePath>` and `-qmp unix:<qmpSocketPath>,...`.
 */
export function isQemuWithPaths(argv: readonly string[] | null, pidFilePath: string, qmpSocketPath: string): boolean {
  if (!argv || argv.length === 0 || !/qemu-system-/.test(argv[0] ?? '')) return false;
  const pidIdx = argv.indexOf('-pidfile');
  const qmpIdx = argv.indexOf('-qmp');
  if (pidIdx < 0 || qmpIdx < 0) return false;
  const qmp = argv[qmpIdx + 1] ?? '';
  return argv[pidIdx + 1] === pidFilePath && (qmp === `unix:${qmpSocketPath}` || qmp.startsWith(`unix:${qmpSocketPath},`));
}
