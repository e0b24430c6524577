/**
 * The per-OS service verbs behind `torvm service install|uninstall|status`
 * (types only; the implementations live in platform/<os>/service.ts).
 */
import type { ServiceDescription } from './service-description.ts';

export type ServiceManagerName = 'systemd' | 'launchd' | 'sc.exe';

export interface ServiceInstallResult {
  manager: ServiceManagerName;
  /** Where the files went. */
  dir: string;
  written: string[];
  unchanged: string[];
  /** Files of an earlier install that are no longer wanted (e.g. autostart turned off). */
  removed: string[];
  /** True when the service manager was told (daemon-reload, enable). */
  activated: boolean;
  /** Commands still to run by hand when `activated` is false, as argv. */
  nextSteps: string[][];
  /** Why nothing was activated, when it was not. */
  note: string | null;
}

export interface ServiceUninstallResult {
  manager: ServiceManagerName;
  dir: string;
  removed: string[];
  /** Files under our names that TorVM did not write: left alone. */
  foreign: string[];
  activated: boolean;
  nextSteps: string[][];
  note: string | null;
}

export interface ServiceUnitStatus {
  name: string;
  installed: boolean;
  /** Carries the marker of `torvm service install`. */
  ours: boolean;
  /** Same content as an install would write now; null when not installed or not comparable. */
  current: boolean | null;
  /** null: cannot tell here. */
  enabled: boolean | null;
  /** The manager's own word (`active`, `inactive`, `failed`…); null when the manager is not running. */
  active: string | null;
}

export interface ServiceStatusReport {
  manager: ServiceManagerName;
  dir: string;
  managerRunning: boolean;
  units: ServiceUnitStatus[];
}

export interface ServiceControl {
  readonly manager: ServiceManagerName;
  install(description: ServiceDescription, options: { force: boolean }): Promise<ServiceInstallResult>;
  uninstall(): Promise<ServiceUninstallResult>;
  status(description: ServiceDescription): Promise<ServiceStatusReport>;
}
