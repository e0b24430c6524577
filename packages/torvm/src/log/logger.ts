/**
 * pino, with in-process destinations only (worker-thread transports break in
 * bundles): stderr, an optional file, and the ring buffer. One child logger per
 * component. Every line is scrubbed of registered secrets first.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { Writable } from 'node:stream';
import { createWriteStream } from 'node:fs';
import { LogRingBuffer, type LogLine } from './ring-buffer.ts';
import { SecretRegistry, SECRET_KEYS, REDACTED } from './secrets.ts';

export type { Logger };

export interface LoggingOptions {
  level: LevelWithSilent;
  /** Where human-facing JSON lines go; default stderr. Null silences it. */
  stream?: NodeJS.WritableStream | null;
  /** Append JSON lines to this file (mode 0600). */
  file?: string;
  ringCapacity?: number;
}

export interface Logging {
  root: Logger;
  /** A child logger for one component ("lifecycle", "firewall", "qmp", …). */
  forComponent(component: string): Logger;
  ring: LogRingBuffer;
  secrets: SecretRegistry;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

export function createLogging(options: LoggingOptions): Logging {
  const secrets = new SecretRegistry();
  const ring = new LogRingBuffer(options.ringCapacity);
  const outputs: NodeJS.WritableStream[] = [];
  if (options.stream !== null) outputs.push(options.stream ?? process.stderr);
  if (options.file) outputs.push(createWriteStream(options.file, { flags: 'a', mode: 0o600 }));

  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      const line = secrets.scrub(chunk.toString('utf8'));
      for (const o of outputs) o.write(line);
      try {
        const obj = JSON.parse(line) as { time?: number; level?: number; component?: string; msg?: string };
        const entry: LogLine = {
          time: obj.time ?? Date.now(),
          level: LEVEL_NAMES[obj.level ?? 30] ?? 'info',
          component: obj.component ?? 'torvm',
          msg: obj.msg ?? '',
          raw: line.trimEnd(),
        };
        ring.push(entry);
      } catch {
        // Not JSON: keep it out of the ring rather than guess.
      }
      done();
    },
  });

  const root = pino(
    {
      level: options.level,
      base: null,
      redact: { paths: SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]), censor: REDACTED },
    },
    sink,
  );
  return { root, ring, secrets, forComponent: (component) => root.child({ component }) };
}
