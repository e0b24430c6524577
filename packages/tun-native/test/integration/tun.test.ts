// The addon against the kernel, inside a network namespace of our own.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

const missing =
  process.getuid?.() !== 0 ? 'needs root'
  : !existsSync('/dev/net/tun') ? 'needs /dev/net/tun'
  : !existsSync(new URL('../../build/Release/tun_native.node', import.meta.url)) ? 'addon not built'
  : undefined;
if (missing && process.env.CI) throw new Error(`tun-native integration: ${missing} (CI must run every test)`);

const ns = `tvtn${process.pid}`;
const run = (args: string[], timeoutMs = 20_000): Promise<string> =>
  new Promise((resolve, reject) =>
    execFile(args[0]!, args.slice(1), { timeout: timeoutMs }, (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout))),
  );

describe('tun-native in a network namespace', { skip: missing, timeout: 60_000 }, () => {
  after(async () => {
    await run(['ip', 'netns', 'del', ns]).catch(() => {});
    rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
  });

  it('reads and writes packets, sets the MTU, and lets the process exit after close()', async () => {
    await run(['ip', 'netns', 'add', ns]);
    const fixture = fileURLToPath(new URL('./fixtures/tun-roundtrip.ts', import.meta.url));
    // The 20 s bound also proves close() stops the reader: a live thread would keep node running.
    const out = JSON.parse(await run(['ip', 'netns', 'exec', ns, process.execPath, '--import', 'tsx', fixture, `tvtn${process.pid % 100000}`])) as {
      name: string; mtu: number; received: { port: number; text: string }[]; localPort: number; wrote: boolean; reply: string; writeAfterClose: string;
    };
    assert.equal(out.mtu, 1400);
    assert.equal(out.received[0]?.text, 'ping through tun');
    assert.equal(out.received[0]?.port, out.localPort);
    assert.equal(out.wrote, true);
    assert.equal(out.reply, 'pong from tun');
    assert.match(out.writeAfterClose, /closed/);
  });
});
