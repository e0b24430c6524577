/**
 * Helpers for the browser tests: build the GUI, run `torvm` in service mode
 * (headless) in a harness network's host namespace, and launch Chromium in
 * that same namespace (the daemon's 127.0.0.1 is the namespace's loopback).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { chromium, type Browser } from 'playwright-core';
import type { TorNetwork } from '../harness/tor-network.ts';
import { TORVM_BIN } from '../e2e/torvm-run.ts';

const GUI_PACKAGE = new URL('../../packages/gui/', import.meta.url).pathname;
export const CHROMIUM = '/usr/bin/chromium';

/** Builds the GUI into `outDir` (outside the repository). */
export function buildGui(outDir: string): void {
  const vite = new URL('../../node_modules/vite/bin/vite.js', import.meta.url).pathname;
  const r = spawnSync(process.execPath, [vite, 'build', '--logLevel', 'warn'], { cwd: GUI_PACKAGE, env: { ...process.env, TORVM_GUI_OUT: outDir }, encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) throw new Error(`vite build failed (${r.status}): ${r.stderr}${r.stdout}`);
}

export interface ServiceRun {
  child: ChildProcess;
  guiUrl: string;
  output(): string;
  exited: Promise<number | null>;
  /** One request on the daemon's Unix socket (a file, so reachable from the root namespace). */
  socket(method: string, path: string, body?: unknown): Promise<{ code: number; json: unknown }>;
}

/** Starts `torvm --headless` (service mode) in the host namespace; resolves once it printed the GUI URL. */
export async function startService(network: TorNetwork, configPath: string, socketPath: string, guiDir: string, timeoutMs = 60_000): Promise<ServiceRun> {
  let out = '';
  const child = spawn('ip', ['netns', 'exec', network.namespaces.host, process.execPath, TORVM_BIN, '--config', configPath, '--headless'], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TORVM_GUI_DIR: guiDir },
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const guiUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`torvm printed no GUI URL within ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /TorVM GUI: (http:\/\/127\.0\.0\.1:\d+\/#token=[A-Za-z0-9_-]+)/.exec(out);
      if (m?.[1]) { clearTimeout(timer); resolve(m[1]); }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`torvm exited (${code}) before printing the GUI URL:\n${out}`)); });
  });
  return {
    child, guiUrl, exited,
    output: () => out,
    socket: (method, path, body) => new Promise((resolve, reject) => {
      const req = request({ socketPath, method, path, timeout: 15_000, headers: { 'content-type': 'application/json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ code: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
      });
      req.on('timeout', () => req.destroy(new Error('socket request timed out')));
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    }),
  };
}

/** Launches Debian's Chromium inside `netns` through a wrapper script (playwright talks to it over a pipe). */
export async function launchChromiumIn(netns: string, dir: string): Promise<Browser> {
  const wrapper = join(dir, 'chromium-in-netns.sh');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec '${netns}' ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  return chromium.launch({
    executablePath: wrapper,
    headless: true,
    timeout: 60_000,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      // Playwright gives every launch a fresh, empty --user-data-dir of its own.
      '--disable-component-update', '--disable-sync',
    ],
  });
}
