/**
 * One error class for the whole controller. Callers and tests match on `code`,
 * never on message text. User codes mean "the input or the machine needs a fix";
 * system codes mean "something we ran failed".
 */

/** Codes whose cause is the user's input or setup. The CLI exits 2 for these. */
export const USER_CODES = {
  ERR_USAGE: 'bad command-line usage',
  ERR_CONFIG_INVALID: 'the config file failed validation',
  ERR_CONFIG_UNSAFE_FILE: 'the config file has unsafe ownership or permissions',
  ERR_CONFIG_UNREADABLE: 'the config file cannot be read or parsed',
  ERR_UNSAFE_VALUE: 'a value would escape its field when rendered',
  ERR_NOT_ROOT: 'the operation needs root',
  ERR_ACCEL_UNAVAILABLE: 'the requested accelerator does not work here',
  ERR_QEMU_UNTRUSTED: 'the QEMU binary is not trusted',
  ERR_QEMU_MISSING: 'no QEMU binary was found',
  ERR_IMAGE_MISSING: 'the VM image is missing or does not match its manifest',
} as const;

/** Codes whose cause is a failing process, command or peer. The CLI exits 1. */
export const SYSTEM_CODES = {
  ERR_COMMAND_FAILED: 'an external command failed',
  ERR_COMMAND_TIMEOUT: 'an external command timed out',
  ERR_STATE_TIMEOUT: 'a lifecycle state did not finish in time',
  ERR_CANCELLED: 'the operation was cancelled',
  ERR_FIREWALL: 'the kill switch could not be applied or verified',
  ERR_NETWORK: 'host networking could not be changed or restored',
  ERR_VM: 'the VM failed',
  ERR_QMP: 'the QEMU monitor (QMP) failed',
  ERR_TOR_CONTROL: "Tor's control port failed",
  ERR_BOOTSTRAP: 'Tor did not bootstrap',
  ERR_IMAGE_BUILD: 'the VM image build failed',
  ERR_INTERNAL: 'an internal invariant was broken',
  ERR_NOT_AVAILABLE: 'this command is not available in this build yet',
} as const;

export type UserCode = keyof typeof USER_CODES;
export type SystemCode = keyof typeof SYSTEM_CODES;
export type TorvmErrorCode = UserCode | SystemCode;

export interface TorvmErrorOptions {
  cause?: unknown;
  /** How the user can fix it, shown under the message. */
  hint?: string;
  /** Structured details (for --json output and logs). Must hold no secrets. */
  details?: Record<string, unknown>;
}

export class TorvmError extends Error {
  static override name = 'TorvmError';
  readonly code: TorvmErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: TorvmErrorCode, message: string, options: TorvmErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = `TorvmError [${code}]`;
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  get isUserError(): boolean {
    return this.code in USER_CODES;
  }
}

export function isTorvmError(err: unknown, code?: TorvmErrorCode): err is TorvmError {
  return err instanceof TorvmError && (code === undefined || err.code === code);
}

/** Exit code contract of the CLI: 0 ok, 1 runtime failure, 2 bad usage or input. */
export function exitCodeFor(err: unknown): 1 | 2 {
  return err instanceof TorvmError && err.isUserError ? 2 : 1;
}

/** Formats an error and its cause chain as the CLI prints it. */
export function describeError(err: unknown): string {
  const lines: string[] = [];
  let current: unknown = err;
  let depth = 0;
  while (current !== undefined && depth < 5) {
    if (current instanceof Error) {
      lines.push(depth === 0 ? current.message : `caused by: ${current.message}`);
      if (current instanceof TorvmError && current.hint && depth === 0) lines.push(`how to fix: ${current.hint}`);
      current = current.cause;
    } else {
      lines.push(depth === 0 ? String(current) : `caused by: ${String(current)}`);
      current = undefined;
    }
    depth++;
  }
  return lines.join('\n');
}
