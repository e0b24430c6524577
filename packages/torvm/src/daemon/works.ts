/**
 * The lifecycle's state functions, wired to the real parts. Read top to
 * bottom, this is what `torvm up` does; core/lifecycle.ts decides the order
 * and guarantees teardown, this file only says what each state does.
 */
import type { TorvmConfig } from '../core/config.ts';
import { TorvmError } from '../core/errors.ts';
import type { LifecycleWorks, StateContext } from '../core/lifecycle.ts';
import type { PolicyState } from '../core/policy.ts';
import type { HostNetworkLifecycle } from '../platform/host-network.ts';
import { BootstrapMonitor, TorControlClient, type TorEvent } from '../tor/index.ts';
import type { QemuSupervisor, VmExit } from '../vm/qemu-supervisor.ts';
import type { StatusStore } from './status-store.ts';

/** The VM for this run, prepared after CheckPrivileges. */
export interface VmHandle {
  supervisor: QemuSupervisor;
  controlPassword: string;
  accel: string;
  discardBootFiles(): void;
}

export interface DaemonDeps {
  config: TorvmConfig;
  status: StatusStore;
  log: { info(msg: string): void; warn(msg: string): void; error(msg: string): void };
  /** Root, tools, image, QEMU, accelerator; returns the prepared (not started) VM. */
  checkPrivilegesAndPrepareVm(signal: AbortSignal): Promise<VmHandle>;
  hostNetwork: HostNetworkLifecycle;
  /** Register a secret so every log line is scrubbed of it. */
  addSecret(secret: string): void;
  /** Whether a QEMU started by an earlier controller is still running (from its pidfile). */
  previousVmAlive(): boolean;
  /** Hears about each new Tor control connection (features attach to it). */
  onTorConnected?: (client: TorControlClient) => void;
  /** Bounds for waits inside states (tests shorten them). */
  bootstrapStallMs?: number;
  /** Starts the LAN gateway (gateway/lan-gateway.ts); used when `config.lanGateway.enabled`. */
  startLanGateway?: () => Promise<{ stop(): Promise<void> }>;
}

/** Resolves when `signal` aborts; rejects with its reason. */
function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

export function createDaemonWorks(deps: DaemonDeps): LifecycleWorks {
  const { config, status, hostNetwork, log } = deps;
  let vm: VmHandle | null = null;
  let adopted = false;
  let tor: TorControlClient | null = null;
  let watcher: { stop(): Promise<void> } | null = null;
  let unexpectedExit: ((e: VmExit) => void) | null = null;
  let lanGateway: { stop(): Promise<void> } | null = null;

  const setKillSwitch = async (state: PolicyState) => {
    await hostNetwork.engageKillSwitch(state);
    status.update((s) => { s.killSwitch = state; });
  };

  const requireVm = (): VmHandle => {
    if (!vm) throw new TorvmError('ERR_INTERNAL', 'the VM was not prepared');
    return vm;
  };

  async function connectTor(signal: AbortSignal): Promise<TorControlClient> {
    if (tor) return tor;
    const client = new TorControlClient({
      host: config.network.vmAddress, port: config.tor.controlPort, password: requireVm().controlPassword,
      log: (line) => log.info(`tor control: ${line}`),
    });
    await client.connect({ signal, retry: true });
    client.onEvent((e: TorEvent) => {
      if (e.type === 'LOG' && (e.severity === 'WARN' || e.severity === 'ERR')) status.update((s) => { s.tor.warnings = [...s.tor.warnings.slice(-9), e.message]; });
    });
    const version = (await client.getInfo(['version'])).get('version') ?? null;
    status.update((s) => { s.tor.version = version; });
    tor = client;
    deps.onTorConnected?.(client);
    return client;
  }

  return {
    async Init() {
      // A crashed run left a journal: undo it under a blocked kill switch first,
      // keeping the TAP if that run's VM is still alive (LaunchVM adopts it).
      return (await hostNetwork.recover({ keepTap: deps.previousVmAlive() })) ? { goto: 'Recover' } : undefined;
    },

    async Recover() {
      status.update((s) => { s.killSwitch = 'blocked'; });
    },

    async CheckPrivileges({ signal }) {
      vm = await deps.checkPrivilegesAndPrepareVm(signal);
      deps.addSecret(vm.controlPassword);
      status.update((s) => { s.vm.accel = vm?.accel ?? null; });
    },

    async SaveNetwork() {
      await hostNetwork.saveNetwork();
    },

    async EngageKillSwitch() {
      await setKillSwitch('booting');
      // Engaging started the host network's watch (it repairs from now on, and after a blocked stop); this logs its repairs.
      watcher ??= await hostNetwork.watch((e) => log.warn(`host networking drifted (${e.reason}); put back: ${e.repaired.join(', ')}`));
    },

    async CreateTAP() {
      await hostNetwork.createTap();
    },

    async LaunchVM({ attempt }) {
      const { supervisor } = requireVm();
      // A QEMU left running by a crashed controller is adopted, not duplicated.
      adopted = attempt === 1 && (await supervisor.adopt());
      if (!adopted) await supervisor.start();
      status.update((s) => { s.vm.pid = supervisor.pid; if (attempt > 1) s.vm.restarts += 1; });
    },

    async WaitTAP({ signal }) {
      const { supervisor } = requireVm();
      if (adopted) return; // its guest finished booting long ago
      await new Promise<void>((resolve, reject) => {
        // Every listener goes when the wait ends, however it ends.
        const finish = (err?: unknown) => {
          supervisor.off('guest', onGuest);
          supervisor.off('exit', onExit);
          signal.removeEventListener('abort', onAbort);
          if (err === undefined) resolve();
          else reject(err);
        };
        const onGuest = (e: { kind: string; message?: string }) => {
          if (e.kind === 'lan-up') finish();
          if (e.kind === 'fatal') finish(new TorvmError('ERR_VM', `the guest failed: ${e.message ?? 'fatal'}`));
        };
        const onExit = (x: VmExit) => finish(new TorvmError('ERR_VM', `the VM exited while booting (${x.cause})`));
        const onAbort = () => finish(signal.reason);
        if (signal.aborted) return finish(signal.reason);
        supervisor.on('guest', onGuest);
        supervisor.on('exit', onExit);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    },

    async ConfigureTAP() {
      await hostNetwork.configureRouting();
    },

    async FlushDNS() {
      await hostNetwork.configureDns();
    },

    async WaitBootstrap({ signal }) {
      const client = await connectTor(signal);
      const monitor = new BootstrapMonitor(client, (line) => log.info(line));
      const publish = () => {
        const snap = monitor.snapshot;
        status.update((s) => { s.bootstrap = { progress: snap.progress, tag: snap.tag, summary: snap.summary, problem: snap.lastProblem?.message ?? null }; });
      };
      // Tor's events, and the monitor's own findings (a proxy problem is named after an async GETCONF).
      const offEvents = client.onEvent(() => publish());
      const offMonitor = monitor.onChange(() => publish());
      const off = () => { offEvents(); offMonitor(); };
      try {
        await monitor.start({ signal });
        publish();
        await monitor.waitUntilBootstrapped({ signal, stallTimeoutMs: deps.bootstrapStallMs ?? 120_000 });
        publish();
      } finally {
        off();
      }
    },

    async Running({ signal }: StateContext) {
      const { supervisor } = requireVm();
      await setKillSwitch('connected');
      if (config.lanGateway.enabled && deps.startLanGateway) lanGateway ??= await deps.startLanGateway();
      const exit = new Promise<VmExit>((resolve) => { unexpectedExit = resolve; supervisor.once('exit', resolve); });
      try {
        const x = await Promise.race([exit, untilAborted(signal)]);
        // The VM died: block host traffic to it, then boot it again.
        log.error(`the VM exited unexpectedly (${x.cause}); the kill switch stays on while it restarts`);
        await setKillSwitch('booting');
        status.update((s) => { s.bootstrap = { progress: 0, tag: 'restarting', summary: 'Restarting the VM', problem: null }; s.vm.pid = null; });
        await tor?.close();
        tor = null;
        return { goto: 'LaunchVM' };
      } finally {
        if (unexpectedExit) supervisor.off('exit', unexpectedExit);
        unexpectedExit = null;
      }
    },

    async Shutdown() {
      // The LAN gateway goes first (no new device streams), then block: nothing may slip out while the VM goes away.
      try {
        const gateway = lanGateway;
        lanGateway = null;
        try {
          await gateway?.stop();
        } finally {
          await setKillSwitch('blocked');
        }
      } finally {
        await watcher?.stop();
        watcher = null;
        await tor?.close();
        tor = null;
        if (vm) {
          const report = await vm.supervisor.stop();
          log.info(`the VM stopped (${report.stoppedBy}, ${report.durationMs} ms)`);
          status.update((s) => { s.vm.pid = null; });
        }
      }
    },

    async RestoreNetwork({ ending }) {
      const keepBlocking = ending?.keepBlocking ?? true;
      await hostNetwork.restoreNetwork({ keepBlocking });
      status.update((s) => { s.killSwitch = keepBlocking ? 'blocked' : 'off'; });
    },

    async Cleanup() {
      if (!vm) return;
      await vm.supervisor.dispose();
      vm.discardBootFiles();
    },
  };
}
