/**
 * Runs and watches one QEMU (Runtime-style, research/aesthetics.md §5):
 * readiness is the QMP greeting raced against the process exit; early stderr
 * becomes a coded error; an unexpected exit is reported at once and, when
 * asked, restarted with backoff; a crash counts only if the exited QEMU is
 * still the current one.
 *
 * QEMU outlives the controller: it is spawned detached (own process group)
 * with stdout/stderr to a file, so a dead controller leaves it running, and a
 * new controller ADOPTS it through the pidfile + QMP socket (after checking
 * that the pid really is that QEMU) instead of starting a second one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { TorvmError } from '../core/errors.ts';
import type { GuestEvent } from './guest-markers.ts';
import { buildQemuArgs, type HostOs, type QemuLaunchSpec } from './qemu-args.ts';
import { classifyStartFailure, stderrTail } from './qemu-stderr.ts';
import { QmpClient, type QmpEvent, type QmpTarget } from './qmp-client.ts';
import { isQemuWithPaths, type ProcessInspector } from './process-inspector.ts';
import { RotatingLog } from './rotating-log.ts';
import { SerialConsole } from './serial-console.ts';
import { acquireStateLock, takeOverStateLock, type StateLock } from './state-disk.ts';

export type VmExitCause = 'guest-panic' | 'guest-reset' | 'guest-shutdown' | 'host-signal' | 'host-qmp-quit' | 'killed' | 'qmp-lost' | 'unknown';

/** What the supervisor reports when a QEMU ends. */
export interface VmExit {
  pid: number;
  /** Null for an adopted QEMU (not our child: its status cannot be read). */
  exitCode: number | null;
  signal: string | null;
  cause: VmExitCause;
  /** True only when stop()/dispose() asked for it. */
  expected: boolean;
  stderrTail: string;
  serialTail: string[];
}

export interface RestartPolicy {
  /** First delay; doubles per consecutive crash. Default 1000 ms. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Give up after this many consecutive failed restarts. Default 5. */
  maxAttempts?: number;
  /** A VM that ran this long resets the attempt count. Default 60 s. */
  stableAfterMs?: number;
}

export interface QemuSupervisorOptions {
  qemuBinary: string;
  /** Must have `serialSocketPath`; `startPaused` is forced on (serial is attached before the CPUs run). */
  spec: QemuLaunchSpec;
  hostOs: HostOs;
  /** QEMU's stdout+stderr (truncated at every start). */
  stderrLogPath: string;
  /** Size cap of the serial log (`spec.serialLogPath`). Default 1 MiB, 2 rotated files. */
  serialLog?: { maxBytes: number; keep?: number };
  /** Restart after an unexpected exit. Absent: report only. */
  restart?: RestartPolicy;
  /** Bound on QEMU start to QMP greeting. Default 30 s. */
  readyTimeoutMs?: number;
  /** Tells our QEMU from a reused pid (per OS: platform/). */
  inspector: ProcessInspector;
  /** Tests only: run QEMU inside this network namespace (`ip netns exec` execs, so the pid stays QEMU's). */
  netns?: string;
  log?: (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void;
}

export interface StopReport {
  /** Which step ended QEMU: the guest powering off, QMP quit, or SIGKILL. */
  stoppedBy: 'already-stopped' | 'powerdown' | 'quit' | 'kill';
  durationMs: number;
}

export interface StopOptions { powerdownTimeoutMs?: number; quitTimeoutMs?: number; killTimeoutMs?: number }

type SupervisorEvents = {
  ready: [{ pid: number; adopted: boolean }];
  exit: [VmExit];
  restarting: [{ attempt: number; delayMs: number }];
  'restart-failed': [TorvmError];
  'gave-up': [{ attempts: number }];
  serial: [string];
  guest: [GuestEvent];
  'qmp-event': [QmpEvent];
};

interface Instance {
  pid: number;
  child: ChildProcess | null;
  qmp: QmpClient | null;
  serial: SerialConsole | null;
  startedAt: number;
  /** Still inside start(): an exit now is a start failure, reported by start() itself. */
  starting: boolean;
  stopping: boolean;
  shutdownReason: string | null;
  panicked: boolean;
  qmpLost: boolean;
  exit: { code: number | null; signal: string | null } | null;
  exited: Promise<void>;
  markExited: (status: { code: number | null; signal: string | null }) => void;
}

/** How long a QEMU whose QMP socket closed may stay alive before we call it hung and kill it. */
const QMP_LOST_GRACE_MS = 2000;

export class QemuSupervisor extends EventEmitter<SupervisorEvents> {
  readonly #o: QemuSupervisorOptions;
  readonly #inspector: ProcessInspector;
  #current: Instance | null = null;
  #lock: StateLock | null = null;
  #restartTimer: NodeJS.Timeout | null = null;
  #attempts = 0;
  #disposed = false;

  constructor(options: QemuSupervisorOptions) {
    super();
    if (!options.spec.serialSocketPath) throw new TorvmError('ERR_INTERNAL', 'the supervisor needs spec.serialSocketPath');
    this.#o = options;
    this.#inspector = options.inspector;
  }

  /** Pid of the running QEMU, or null. */
  get pid(): number | null {
    return this.#current?.pid ?? null;
  }

  /** The live QMP session of the running QEMU, or null. */
  get qmp(): QmpClient | null {
    return this.#current?.qmp ?? null;
  }

  /** Resolves when the current QEMU (if any) has exited. */
  exited(): Promise<void> {
    return this.#current?.exited ?? Promise.resolve();
  }

  /** True if `pid` is a live QEMU started with our pidfile and QMP socket. */
  isOurQemu(pid: number): boolean {
    return this.#inspector.isAlive(pid) && isQemuWithPaths(this.#inspector.commandLine(pid), this.#o.spec.pidFilePath, this.#o.spec.qmpSocketPath);
  }

  /**
   * Starts QEMU and resolves once QMP answers, the serial console is attached
   * and the CPUs run. Rejects with a coded TorvmError (ERR_VM,
   * ERR_ACCEL_UNAVAILABLE, ERR_IMAGE_MISSING, ERR_NETWORK, …) if QEMU dies or
   * hangs on the way; nothing is left running then. Call {@link adopt} first:
   * a QEMU left by a dead controller still holds the state-disk lock, and
   * start() refuses (ERR_VM) rather than run a second VM.
   */
  async start(): Promise<void> {
    if (this.#disposed) throw new TorvmError('ERR_INTERNAL', 'start() after dispose()');
    if (this.#current) throw new TorvmError('ERR_INTERNAL', 'the VM is already running');
    this.#lock ??= acquireStateLock(this.#o.spec.stateDiskPath, (pid) => this.#lockHolderAlive(pid));
    try {
      await this.#launch();
      this.#attempts = 0;
    } catch (err) {
      this.#releaseLock();
      throw err;
    }
  }

  /**
   * Takes over a QEMU left running by a previous controller. Resolves true
   * if one was adopted, false if there is none (a stale pidfile is ignored).
   */
  async adopt(): Promise<boolean> {
    if (this.#current) return true;
    let pid: number;
    try {
      pid = Number(readFileSync(this.#o.spec.pidFilePath, 'utf8').trim());
    } catch {
      return false;
    }
    if (!Number.isInteger(pid) || pid <= 1 || !this.isOurQemu(pid)) return false;
    this.#lock = takeOverStateLock(this.#o.spec.stateDiskPath, pid, (p) => this.#lockHolderAlive(p));
    const inst = this.#newInstance(pid, null);
    this.#current = inst;
    try {
      await this.#attach(inst, 10_000);
      const status = await inst.qmp?.execute<{ status: string; running: boolean }>('query-status');
      // The old controller may have died between start and `cont`.
      if (status && !status.running && (status.status === 'prelaunch' || status.status === 'paused')) await inst.qmp?.execute('cont');
    } catch (err) {
      this.#current = null;
      this.#releaseLock();
      throw new TorvmError('ERR_VM', `cannot adopt the running QEMU (pid ${pid})`, { cause: err });
    }
    this.#log('info', `adopted the running QEMU (pid ${pid})`);
    this.emit('ready', { pid, adopted: true });
    return true;
  }

  /**
   * Graceful stop, each step bounded: 1. `system_powerdown` and wait for the
   * guest to power off; 2. QMP `quit`; 3. SIGKILL. Idempotent. Cancels any
   * pending restart and releases the state-disk lock.
   */
  async stop(options: StopOptions = {}): Promise<StopReport> {
    const started = Date.now();
    this.#cancelRestart();
    const inst = this.#current;
    if (!inst) {
      this.#releaseLock();
      return { stoppedBy: 'already-stopped', durationMs: 0 };
    }
    inst.stopping = true;
    const waitExit = (ms: number) => Promise.race([inst.exited.then(() => true), delay(ms).then(() => false)]);
    let stoppedBy: StopReport['stoppedBy'] = 'kill';
    // 1. Ask the guest to power off (ACPI power button; the guest init stops Tor and unmounts /state).
    if (await this.#tryQmp(inst, 'system_powerdown') && await waitExit(options.powerdownTimeoutMs ?? 20_000)) stoppedBy = 'powerdown';
    // 2. Tell QEMU to quit.
    else if (await this.#tryQmp(inst, 'quit') && await waitExit(options.quitTimeoutMs ?? 3_000)) stoppedBy = 'quit';
    // 3. Kill it.
    else {
      this.#kill(inst);
      if (!(await waitExit(options.killTimeoutMs ?? 5_000))) {
        throw new TorvmError('ERR_STATE_TIMEOUT', `QEMU (pid ${inst.pid}) did not exit after SIGKILL`);
      }
    }
    this.#releaseLock();
    return { stoppedBy, durationMs: Date.now() - started };
  }

  /** Kills QEMU now (SIGKILL), awaits its exit (bounded), releases everything. Idempotent. */
  async dispose(): Promise<void> {
    this.#disposed = true;
    this.#cancelRestart();
    const inst = this.#current;
    if (inst) {
      inst.stopping = true;
      this.#kill(inst);
      await Promise.race([inst.exited, delay(5_000)]);
    }
    this.#releaseLock();
  }

  async #launch(): Promise<void> {
    const spec: QemuLaunchSpec = { ...this.#o.spec, startPaused: true };
    const args = buildQemuArgs(spec, this.#o.hostOs);
    // Leftovers of a QEMU that was killed: QEMU would refuse or we would talk to a dead socket.
    for (const p of [spec.qmpSocketPath, spec.serialSocketPath, spec.pidFilePath]) if (p) rmSync(p, { force: true });
    const stderrFd = openSync(this.#o.stderrLogPath, 'w', 0o600);
    let child: ChildProcess;
    try {
      const argv = this.#o.netns ? ['ip', 'netns', 'exec', this.#o.netns, this.#o.qemuBinary, ...args] : [this.#o.qemuBinary, ...args];
      this.#log('debug', `[#] ${argv.join(' ')}`);
      // detached + no stdio pipes: QEMU survives the controller and never blocks on a dead pipe.
      child = spawn(argv[0] as string, argv.slice(1), { detached: true, stdio: ['ignore', stderrFd, stderrFd], env: { LC_ALL: 'C', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    } finally {
      closeSync(stderrFd);
    }
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    if (child.pid === undefined) throw new TorvmError('ERR_VM', `cannot start ${this.#o.qemuBinary}`, { cause: await spawnError });
    const inst = this.#newInstance(child.pid, child);
    inst.starting = true;
    this.#current = inst;
    const abort = new AbortController();
    // Readiness: the QMP greeting, raced against QEMU's exit. Both losers get a
    // no-op catch so a late rejection is never unhandled.
    const diedEarly = inst.exited.then(() => {
      abort.abort();
      throw classifyStartFailure(this.#readStderr(), inst.exit ?? { code: null, signal: null });
    });
    diedEarly.catch(() => {});
    const attached = this.#attach(inst, this.#o.readyTimeoutMs ?? 30_000, abort.signal);
    attached.catch(() => {});
    try {
      await Promise.race([attached, diedEarly]);
      await inst.qmp?.execute('cont');
    } catch (err) {
      abort.abort();
      inst.stopping = true;
      this.#kill(inst);
      await Promise.race([inst.exited, delay(5_000)]);
      if (this.#current === inst) this.#current = null;
      if (err instanceof TorvmError && err.code !== 'ERR_QMP') throw err;
      throw new TorvmError('ERR_VM', `QEMU did not become ready: ${err instanceof Error ? err.message : String(err)}`, { cause: err, details: { stderr: this.#readStderr().slice(-4000) } });
    }
    inst.starting = false;
    this.#lock?.setQemuPid(inst.pid);
    this.#log('info', `QEMU started (pid ${inst.pid})`);
    this.emit('ready', { pid: inst.pid, adopted: false });
  }

  /** Connects QMP and the serial console to `inst` and wires exit detection. */
  async #attach(inst: Instance, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const qmp = await QmpClient.connect(this.#qmpTarget(), { connectTimeoutMs: timeoutMs, commandTimeoutMs: 10_000, ...(signal ? { signal } : {}) });
    inst.qmp = qmp;
    if (inst.exit) { qmp.close(); return; }
    qmp.on('event', (e) => {
      if (e.event === 'SHUTDOWN') inst.shutdownReason = typeof e.data.reason === 'string' ? e.data.reason : null;
      if (e.event === 'GUEST_PANICKED') inst.panicked = true;
      if (this.#current === inst) this.emit('qmp-event', e);
    });
    qmp.once('close', () => this.#onChannelLost(inst, 'qmp'));
    const log = new RotatingLog(this.#o.spec.serialLogPath, this.#o.serialLog ?? { maxBytes: 1024 * 1024, keep: 2 });
    const serial = await SerialConsole.connect(this.#o.spec.serialSocketPath as string, log);
    inst.serial = serial;
    serial.on('line', (line) => { if (this.#current === inst) this.emit('serial', line); });
    serial.on('guest', (event) => {
      if (event.kind === 'kernel-panic') inst.panicked = true;
      if (this.#current === inst) this.emit('guest', event);
    });
    serial.once('close', () => this.#onChannelLost(inst, 'serial'));
  }

  #qmpTarget(): QmpTarget {
    // Windows: Node cannot connect to AF_UNIX paths there, so QMP listens on loopback TCP.
    if (this.#o.hostOs === 'win32') return { host: '127.0.0.1', port: this.#o.spec.qmpTcpPort ?? 0 };
    return { path: this.#o.spec.qmpSocketPath };
  }

  #newInstance(pid: number, child: ChildProcess | null): Instance {
    let resolve!: () => void;
    const inst: Instance = {
      pid, child, qmp: null, serial: null, startedAt: Date.now(), starting: false, stopping: false, shutdownReason: null,
      panicked: false, qmpLost: false, exit: null,
      exited: new Promise<void>((r) => { resolve = r; }),
      markExited: (status) => {
        if (inst.exit) return;
        inst.exit = status;
        resolve();
        this.#onExit(inst);
      },
    };
    child?.once('exit', (code, signal) => inst.markExited({ code, signal }));
    return inst;
  }

  /**
   * QMP or serial closed: QEMU is dying (or hung with a dead monitor). A child
   * reports its own exit; an adopted QEMU is polled until gone. A QEMU still
   * alive after the grace time is unmanageable and is killed.
   */
  #onChannelLost(inst: Instance, channel: 'qmp' | 'serial'): void {
    if (inst.exit) return;
    this.#log('debug', `${channel} of QEMU pid ${inst.pid} closed`);
    void (async () => {
      const deadline = Date.now() + QMP_LOST_GRACE_MS;
      while (!inst.exit && Date.now() < deadline) {
        if (!inst.child && !this.#inspector.isAlive(inst.pid)) return inst.markExited({ code: null, signal: null });
        await delay(25);
      }
      if (inst.exit) return;
      inst.qmpLost = true;
      this.#kill(inst);
      if (!inst.child) {
        while (!inst.exit && this.#inspector.isAlive(inst.pid)) await delay(25);
        inst.markExited({ code: null, signal: 'SIGKILL' });
      }
    })();
  }

  #onExit(inst: Instance): void {
    inst.qmp?.close();
    inst.serial?.close();
    if (this.#current !== inst) return; // an old QEMU: not a crash of the current VM
    this.#current = null;
    if (inst.starting) return; // start() rejects with the coded error
    const report: VmExit = {
      pid: inst.pid,
      exitCode: inst.exit?.code ?? null,
      signal: inst.exit?.signal ?? null,
      cause: this.#causeOf(inst),
      expected: inst.stopping,
      stderrTail: inst.child ? stderrTail(this.#readStderr()) : '',
      serialTail: inst.serial?.tail() ?? [],
    };
    this.#log(report.expected ? 'info' : 'error', `QEMU (pid ${inst.pid}) exited: ${report.cause}${report.expected ? '' : ' (unexpected)'}`);
    this.emit('exit', report);
    if (report.expected || this.#disposed) return;
    if (!this.#o.restart) { this.#releaseLock(); return; }
    if (Date.now() - inst.startedAt >= (this.#o.restart.stableAfterMs ?? 60_000)) this.#attempts = 0;
    this.#scheduleRestart();
  }

  #causeOf(inst: Instance): VmExitCause {
    if (inst.panicked || inst.shutdownReason === 'guest-panic') return 'guest-panic';
    if (inst.qmpLost) return 'qmp-lost';
    switch (inst.shutdownReason) {
      case 'guest-reset': return 'guest-reset';
      case 'guest-shutdown': return 'guest-shutdown';
      case 'host-signal': return 'host-signal';
      case 'host-qmp-quit': return 'host-qmp-quit';
    }
    if (inst.exit?.signal === 'SIGKILL') return 'killed';
    return 'unknown';
  }

  #scheduleRestart(): void {
    const policy = this.#o.restart ?? {};
    const maxAttempts = policy.maxAttempts ?? 5;
    if (this.#attempts >= maxAttempts) {
      this.#releaseLock();
      this.emit('gave-up', { attempts: this.#attempts });
      return;
    }
    this.#attempts++;
    const delayMs = Math.min((policy.initialDelayMs ?? 1000) * 2 ** (this.#attempts - 1), policy.maxDelayMs ?? 30_000);
    this.emit('restarting', { attempt: this.#attempts, delayMs });
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      if (this.#disposed || this.#current) return;
      this.#launch().catch((err: unknown) => {
        const error = err instanceof TorvmError ? err : new TorvmError('ERR_VM', 'restart failed', { cause: err });
        this.emit('restart-failed', error);
        if (!this.#disposed) this.#scheduleRestart();
      });
    }, delayMs);
  }

  #cancelRestart(): void {
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#restartTimer = null;
  }

  async #tryQmp(inst: Instance, command: string): Promise<boolean> {
    if (!inst.qmp || inst.qmp.closed || inst.exit) return inst.exit !== null;
    try {
      await inst.qmp.execute(command, undefined, { timeoutMs: 2_000 });
      return true;
    } catch {
      // `quit` may lose its reply when QEMU exits first; the exit wait decides.
      return command === 'quit';
    }
  }

  /** SIGKILL by pid, only after checking the pid is still this QEMU. */
  #kill(inst: Instance): void {
    if (inst.exit) return;
    if (inst.child) {
      inst.child.kill('SIGKILL');
      return;
    }
    if (this.isOurQemu(inst.pid)) {
      try { process.kill(inst.pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }

  #lockHolderAlive(pid: number): boolean {
    if (!this.#inspector.isAlive(pid)) return false;
    const argv = this.#inspector.commandLine(pid) ?? [];
    // A reused pid of some unrelated process must not keep the disk locked forever.
    return isQemuWithPaths(argv, this.#o.spec.pidFilePath, this.#o.spec.qmpSocketPath) || /node|torvm/.test(argv.slice(0, 3).join(' '));
  }

  #releaseLock(): void {
    this.#lock?.release();
    this.#lock = null;
  }

  #readStderr(): string {
    try {
      return readFileSync(this.#o.stderrLogPath, 'utf8');
    } catch {
      return '';
    }
  }

  #log(level: 'debug' | 'info' | 'warn' | 'error', message: string): void {
    this.#o.log?.(level, message);
  }
}
