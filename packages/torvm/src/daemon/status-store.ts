/** The daemon's live status: one object, updated by the lifecycle, read by the API. */
import { EventEmitter } from 'node:events';
import { API_VERSION, type DaemonStatus } from '../api/schema.ts';

export class StatusStore extends EventEmitter<{ change: [DaemonStatus] }> {
  #status: DaemonStatus;

  constructor(testingNetwork: boolean) {
    super();
    this.#status = {
      apiVersion: API_VERSION,
      state: 'Init',
      since: new Date().toISOString(),
      killSwitch: 'off',
      bootstrap: { progress: 0, tag: 'starting', summary: 'Starting', problem: null },
      vm: { pid: null, accel: null, restarts: 0 },
      tor: { version: null, warnings: [], circuits: [], bandwidth: { readBps: 0, writtenBps: 0, history: [] } },
      testingNetwork,
      ended: null,
      lastError: null,
    };
  }

  get(): DaemonStatus {
    return structuredClone(this.#status);
  }

  /** Applies a change and notifies listeners. */
  update(change: (s: DaemonStatus) => void): void {
    change(this.#status);
    this.emit('change', this.get());
  }
}
