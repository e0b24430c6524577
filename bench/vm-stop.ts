/**
 * VM runtime timings with the real guest image under TCG, in a test namespace
 * (wan slirp restrict=on, lan TAP in the namespace, guest Tor DisableNetwork 1):
 *   - start: spawn to QMP ready, and to the guest's "tor started" marker;
 *   - graceful stop (system_powerdown -> guest poweroff);
 *   - crash detection: SIGKILL of QEMU to the supervisor's exit event.
 *   TORVM_IMAGE_DIR=/path/to/image node --import tsx bench/vm-stop.ts [rounds]
 */
import { createCommandRunner } from '../packages/torvm/src/platform/exec.ts';
import { ensureSystemUser } from '../packages/torvm/src/platform/linux/system-user.ts';
import { linuxProcessInspector } from '../packages/torvm/src/platform/linux/process-inspector.ts';
import { QemuSupervisor, type VmExit } from '../packages/torvm/src/vm/qemu-supervisor.ts';
import { QEMU, findGuestImage, prepareGuestRun } from '../packages/torvm/test/integration/vm-fixtures.ts';

const rounds = Number(process.argv[2] ?? 3);
const image = findGuestImage();
if (!image) {
  console.error('vm-stop: set TORVM_IMAGE_DIR to a built guest image');
  process.exit(2);
}
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

await ensureSystemUser(createCommandRunner());
const run = await prepareGuestRun('bench', image);
const results = { qmpReadyMs: [] as number[], torStartedMs: [] as number[], stopMs: [] as number[], killDetectMs: [] as number[], stoppedBy: [] as string[] };
try {
  for (let i = 0; i < rounds; i++) {
    for (const mode of ['stop', 'kill'] as const) {
      const s = new QemuSupervisor({ qemuBinary: QEMU, spec: run.spec, hostOs: 'linux', inspector: linuxProcessInspector, stderrLogPath: run.stderrLogPath, netns: run.ns });
      try {
        const torStarted = new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no "tor started" within 120 s')), 120_000);
          s.on('guest', (e) => { if (e.kind === 'tor-started') { clearTimeout(timer); resolve(); } });
          s.once('exit', (e) => { clearTimeout(timer); reject(new Error(`VM exited: ${e.cause}`)); });
        });
        const t0 = process.hrtime.bigint();
        await s.start();
        results.qmpReadyMs.push(ms(t0));
        await torStarted;
        results.torStartedMs.push(ms(t0));
        if (mode === 'stop') {
          const t1 = process.hrtime.bigint();
          const report = await s.stop({ powerdownTimeoutMs: 60_000 });
          results.stopMs.push(ms(t1));
          results.stoppedBy.push(report.stoppedBy);
        } else {
          const exit = new Promise<VmExit>((resolve) => s.once('exit', resolve));
          const t1 = process.hrtime.bigint();
          process.kill(s.pid as number, 'SIGKILL');
          await exit;
          results.killDetectMs.push(ms(t1));
        }
      } finally {
        await s.dispose();
      }
    }
  }
} finally {
  await run.cleanup();
}
console.log(JSON.stringify({
  rounds,
  medianMs: {
    qmpReady: median(results.qmpReadyMs), torStarted: median(results.torStartedMs),
    gracefulStop: median(results.stopMs), killDetection: median(results.killDetectMs),
  },
  // Baselines from the same run: a graceful stop against a hard kill (what a
  // clean shutdown costs), and start-to-Tor against start-to-QMP (guest boot share).
  ratios: {
    gracefulStopVsKill: +(median(results.stopMs) / median(results.killDetectMs)).toFixed(1),
    torStartedVsQmpReady: +(median(results.torStartedMs) / median(results.qmpReadyMs)).toFixed(1),
  },
  stoppedBy: results.stoppedBy,
  raw: results,
}, null, 2));
