/**
 * The local API's wire format, shared by the daemon, the CLI and the GUI.
 * Every request body and every response is checked against these schemas.
 */
import { z } from 'zod';
import { STATES } from '../core/lifecycle.ts';

export const API_VERSION = 1;

export const bootstrapSchema = z.strictObject({
  progress: z.int().min(0).max(100),
  tag: z.string(),
  summary: z.string(),
  /** Tor's own words for the last bootstrap problem, if any. */
  problem: z.string().nullable(),
});

export const circuitSchema = z.strictObject({
  id: z.string(),
  status: z.string(),
  purpose: z.string().nullable(),
  hops: z.array(z.strictObject({ fingerprint: z.string().nullable(), nickname: z.string().nullable(), country: z.string().nullable() })),
});

export const bandwidthSchema = z.strictObject({
  /** Bytes per second over the last second, as Tor's BW events report. */
  readBps: z.number().min(0),
  writtenBps: z.number().min(0),
  /** The last samples, oldest first (at most 120). */
  history: z.array(z.strictObject({ t: z.number(), read: z.number(), written: z.number() })),
});

export const statusSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION),
  /** The lifecycle state, or Stopped once the run has ended. */
  state: z.enum([...STATES, 'Stopped']),
  since: z.string(),
  /** What the kill switch enforces: off (no table), or one of the policy states. */
  killSwitch: z.enum(['off', 'blocked', 'booting', 'connected']),
  bootstrap: bootstrapSchema,
  vm: z.strictObject({
    pid: z.int().nullable(),
    accel: z.string().nullable(),
    restarts: z.int().min(0),
  }),
  tor: z.strictObject({
    version: z.string().nullable(),
    warnings: z.array(z.string()),
    circuits: z.array(circuitSchema),
    bandwidth: bandwidthSchema,
  }),
  /** Set when the run uses a private test network instead of the public Tor network. */
  testingNetwork: z.boolean(),
  /** How the run ended, once it has. */
  ended: z.strictObject({ reason: z.enum(['user-stop', 'cancelled', 'failed']), keptBlocking: z.boolean() }).nullable(),
  lastError: z.strictObject({ code: z.string(), message: z.string() }).nullable(),
});
export type DaemonStatus = z.output<typeof statusSchema>;

export const stopRequestSchema = z.strictObject({
  /** An explicit user stop releases the kill switch (unless lockdown); a cancel keeps blocking. */
  kind: z.enum(['user-stop', 'cancelled']).prefault('user-stop'),
});
export type StopRequest = z.output<typeof stopRequestSchema>;

export const errorBodySchema = z.strictObject({ error: z.strictObject({ code: z.string(), message: z.string() }) });
