/**
 * A stand-in controller process for crash tests: brings TorVM's host
 * networking up inside a test namespace (connected, watching), prints READY,
 * and waits. The test kills it with SIGKILL and checks the kernel keeps blocking.
 *   node --import tsx controller-main.ts JSON(LinuxHostNetworkOptions minus runner)
 */
import { createCommandRunner } from '../../packages/torvm/src/platform/exec.ts';
import { createLinuxHostNetwork, type LinuxHostNetworkOptions } from '../../packages/torvm/src/platform/linux/host-network.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as Omit<LinuxHostNetworkOptions, 'runner'>;
const net = createLinuxHostNetwork({ ...options, runner: createCommandRunner() });
await net.up();
await net.setConnected();
await net.watch();
process.stdout.write('READY\n');
setInterval(() => {}, 1 << 30);
