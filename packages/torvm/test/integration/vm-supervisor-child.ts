/**
 * A stand-in "controller" for the adoption test (vm-supervisor.test.ts):
 * starts a supervised QEMU, prints `READY <qemu pid>`, then idles until the
 * test kills it with SIGKILL. Options come as JSON in argv[2].
 */
import { QemuSupervisor, type QemuSupervisorOptions } from '../../src/vm/qemu-supervisor.ts';
import { linuxProcessInspector } from '../../src/platform/linux/process-inspector.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as Omit<QemuSupervisorOptions, 'inspector'>;
const supervisor = new QemuSupervisor({ ...options, inspector: linuxProcessInspector });
supervisor.start().then(
  () => process.stdout.write(`READY ${supervisor.pid}\n`),
  (err: unknown) => { process.stderr.write(`START FAILED ${String(err)}\n`); process.exit(1); },
);
setInterval(() => {}, 60_000);
