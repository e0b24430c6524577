/**
 * Tor control: the public surface used by the lifecycle (WaitBootstrap), the
 * daemon and the GUI. Everything else in this folder is an implementation detail.
 */
export {
  TorControlClient,
  type CallOptions, type ConfEntries, type ControlClientState, type ControlEndpoint, type NewIdentityResult,
  type ProtocolInfo, type TorControlClientOptions, type TorControlClientSettings, type TorEvent, type TorEventName, type TorSignal,
} from './control-client.ts';
export {
  BootstrapMonitor, BOOTSTRAP_EVENTS, describeBootstrapProblem,
  type BootstrapProblem, type BootstrapSnapshot, type BootstrapSource, type WaitBootstrapOptions,
} from './bootstrap-monitor.ts';
export { generateControlPassword, hashControlPassword, verifyControlPassword } from './hashed-password.ts';
export { TOR_EVENT_NAMES, parseBootstrapStatus, type BootstrapStatus, type CircuitHop } from './events.ts';
export { TOR_SIGNALS } from './commands.ts';
