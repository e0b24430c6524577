/**
 * Where the VM runtime keeps its files. PURE. One layout, so that a restarted
 * controller finds (and adopts) the QEMU a previous one started.
 */
import { TorvmError } from '../core/errors.ts';

export interface VmPaths {
  /** The persistent state disk (config vm.stateDir). */
  stateDiskPath: string;
  /** Supervisor-written, size-capped copy of the serial console. */
  serialLogPath: string;
  /** QEMU's stdout/stderr (read to explain a failed start). */
  stderrLogPath: string;
  /** Runtime files: sockets and the pidfile. */
  qmpSocketPath: string;
  serialSocketPath: string;
  pidFilePath: string;
}

/**
 * `stateDir` holds what survives a reboot, `runDir` what does not
 * (Linux: /var/lib/torvm and /run/torvm). Socket paths must fit sun_path,
 * so `runDir` must be short; a too-long one is ERR_UNSAFE_VALUE.
 */
export function vmPaths(stateDir: string, runDir: string, logDir: string = stateDir): VmPaths {
  const join = (dir: string, name: string) => `${dir.replace(/\/+$/, '')}/${name}`;
  const paths: VmPaths = {
    stateDiskPath: join(stateDir, 'state.img'),
    serialLogPath: join(logDir, 'serial.log'),
    stderrLogPath: join(logDir, 'qemu.log'),
    qmpSocketPath: join(runDir, 'qmp.sock'),
    serialSocketPath: join(runDir, 'serial.sock'),
    pidFilePath: join(runDir, 'qemu.pid'),
  };
  for (const p of [paths.qmpSocketPath, paths.serialSocketPath]) {
    if (Buffer.byteLength(p) > 103) throw new TorvmError('ERR_UNSAFE_VALUE', `socket path ${p} is longer than 103 bytes`, { hint: 'use a shorter runtime directory' });
  }
  return paths;
}
