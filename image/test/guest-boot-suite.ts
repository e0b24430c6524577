/**
 * The VM image, booted for real (QEMU TCG, as root) inside a network
 * namespace this test creates:
 *   wan = QEMU user networking, restrict=on (the guest reaches nothing),
 *   lan = a TAP in the namespace, host side 10.10.10.2/30, default route via the guest.
 * From the host side of that link it proves: the ControlPort takes the
 * per-boot password and refuses a wrong one; TCP to any address lands in
 * Tor's TransPort with its original destination; UDP other than DNS gets
 * no reply and no ICMP, while DNS to any address reaches Tor's DNSPort;
 * the state disk keeps Tor's data across a clean ACPI power-off and a
 * reboot. It also rebuilds the image and checks the bytes are identical.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GuestArch } from '../../packages/torvm/src/core/guest.ts';
import { buildImage } from '../src/build.ts';
import { DEFAULT_CACHE_DIR } from '../src/paths.ts';
import { run } from '../../test/harness/run.ts';
import { cleanupStale, createNamespace, deleteNamespace } from '../../test/harness/netns.ts';
import { bootGuest, createBlankDisk, readFromDisk, setUpLanTap, testConfig, type GuestVm } from './guest-vm.ts';
import { imageUnderTest, missingPrerequisite, type ImageUnderTest } from './image-under-test.ts';

const PREFIX = 'tvimg';
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const probeScript = fileURLToPath(new URL('./lan-probe.ts', import.meta.url));

/** The guest markers ("torvm-guest: …") in serial order. */
const markers = (serial: string) => serial.split('\n').filter((l) => l.startsWith('torvm-guest: ')).map((l) => l.slice('torvm-guest: '.length).trim());

/** The whole boot suite for one guest architecture. */
export function guestBootSuite(arch: GuestArch, budget: { bootMs: number; suiteMs: number }): void {
  const tag = arch === 'x86_64' ? 'x' : 'a';
  const ns = `${PREFIX}${process.pid}-${tag}`;
  const tap = `${PREFIX}${tag}${process.pid}`.slice(0, 15);
  const missing = missingPrerequisite(arch);
  if (missing && process.env.CI) throw new Error(`guest-boot test (${arch}): ${missing} (CI must run every tier)`);

  /** Runs the lan probe on the host side of the link (inside the namespace) and parses its JSON. */
  async function probe<T>(...args: string[]): Promise<T> {
    const r = await run(process.execPath, ['--import', 'tsx', probeScript, ...args], { netns: ns, timeoutMs: 60_000, cwd: repoRoot });
    return JSON.parse(r.stdout) as T;
  }

  describe(`guest image ${arch}: boot, firewall and state disk`, { skip: missing, timeout: budget.suiteMs }, () => {
    let image: ImageUnderTest;
    let work: string;
    let diskPath: string;
    let hostMac: string;
    let vm: GuestVm | undefined;
    const config = testConfig();
    const password = randomBytes(18).toString('base64url');

    before(async () => {
      await cleanupStale(PREFIX);
      work = mkdtempSync(join(tmpdir(), `${PREFIX}${process.pid}-${tag}-`));
      image = await imageUnderTest(arch, `${PREFIX}${process.pid}-${tag}-build-`, () => {});
      await createNamespace(ns, 'nameserver 10.10.10.1\n');
      hostMac = await setUpLanTap(ns, tap, config);
      diskPath = join(work, 'state.img');
      await createBlankDisk(diskPath);
    });

    after(async () => {
      await vm?.kill();
      await deleteNamespace(ns);
      if (work) rmSync(work, { recursive: true, force: true });
      if (image?.builtHere) rmSync(join(image.builtHere.cacheDir, '..'), { recursive: true, force: true });
    });

    it('two builds from the same pins give byte-identical artifacts', async () => {
      // The second build reuses a warm cache (the one just built from scratch, or the default one CI filled).
      const cacheDir = image.builtHere?.cacheDir ?? DEFAULT_CACHE_DIR;
      const outDir = join(work, 'rebuild');
      const again = await buildImage({ arch, outDir, cacheDir });
      assert.deepEqual(again, image.manifest);
      for (const a of Object.values(again.artifacts)) {
        assert.ok(readFileSync(join(outDir, a.file)).equals(readFileSync(join(image.dir, a.file))), `${a.file} differs between builds`);
      }
      rmSync(outDir, { recursive: true, force: true });
    });

    it('first boot: creates the state disk, loads the firewall, starts Tor as the tor user', async () => {
      vm = await bootGuest({ arch, imageDir: image.dir, workDir: join(work, 'boot1'), ns, tap, hostMac, diskPath, controlPassword: password, config });
      await vm.waitForSerial(/Opened Transparent pf\/netfilter listener connection \(ready\) on 10\.10\.10\.1:9095/, budget.bootMs);
      await vm.waitForSerial(/Opened DNS listener connection \(ready\)/, 30_000);
      // Tor logs this after loading its startup data; the GeoIP file alone blocks its main loop for
      // many seconds under TCG (aarch64 most), and the control port answers nothing meanwhile.
      await vm.waitForSerial(/Bootstrapped 0% \(starting\)/, budget.bootMs);
      const seen = markers(vm.serial());
      const order = ['init started', 'modules loaded', 'firewall loaded', 'lan up', 'state disk created', 'state disk ready'];
      const positions = order.map((m) => seen.indexOf(m));
      assert.ok(positions.every((p) => p >= 0), `markers missing: ${JSON.stringify(seen)}`);
      assert.deepEqual([...positions].sort((a, b) => a - b), positions, `markers out of order: ${JSON.stringify(seen)}`);
      assert.ok(seen.indexOf('firewall loaded') < seen.indexOf('lan up'), 'the firewall must be in place before any interface is up');
      assert.ok(seen.some((m) => /^tor started pid=\d+$/.test(m)));
      assert.ok(!seen.some((m) => m.startsWith('fatal:')), `fatal marker: ${JSON.stringify(seen)}`);
    });

    it('ControlPort answers the per-boot password and refuses a wrong one; Tor runs as the tor user', async (t) => {
      const r = await probe<{ goodAuth: string; version: string; user: string; sandbox: string; badAuth: string }>('control', password);
      t.diagnostic(JSON.stringify(r));
      assert.equal(r.goodAuth, '250 OK');
      assert.match(r.version, /250-version=0\.4\./);
      assert.match(r.user, /process\/user=tor\b/);
      assert.match(r.user, /process\/uid=100\b/);
      assert.match(r.badAuth, /^515 /);
    });

    it('TCP to an arbitrary address is redirected to the TransPort with its original destination', async (t) => {
      const r = await probe<{ connected: boolean; auth: string; streamStatus: string; transListeners: string }>('transparent', password);
      t.diagnostic(JSON.stringify(r));
      assert.equal(r.connected, true, 'the handshake to 203.0.113.10:80 should complete with Tor inside the guest');
      assert.equal(r.auth, '250 OK');
      assert.match(r.streamStatus, /\d+ \w+ \d+ 203\.0\.113\.10:80/, `Tor did not see the stream: ${r.streamStatus}`);
      assert.match(r.transListeners, /10\.10\.10\.1:9095/);
    });

    it('drops UDP that is not DNS (no reply, no ICMP), while DNS to any address reaches Tor', async (t) => {
      const r = await probe<{ dnsAnswers: Record<string, string[]>; probes: Array<{ to: string; port: number; error: string | null; replies: number }> }>('udp');
      t.diagnostic(JSON.stringify(r));
      // Tor's automap answers the .onion name from 10.192.0.0/10, wherever the query was addressed.
      for (const server of ['10.10.10.1', '198.51.100.53']) {
        const answers = r.dnsAnswers[server] ?? [];
        assert.ok(answers.some((a) => /^A 10\.(19[2-9]|2[0-4]\d|25[0-5])\.\d+\.\d+$/.test(a)), `DNS via ${server}: ${JSON.stringify(answers)}`);
      }
      const control = r.probes.find((p) => p.to === '10.10.10.2');
      assert.equal(control?.error, 'ECONNREFUSED', 'the ICMP detector must see a local port-unreachable');
      for (const p of r.probes.filter((x) => x.to !== '10.10.10.2')) {
        assert.equal(p.error, null, `UDP to ${p.to}:${p.port} drew an ICMP error`);
        assert.equal(p.replies, 0, `UDP to ${p.to}:${p.port} got a reply`);
      }
    });

    let stateAfterBoot1: string | undefined;
    let onionAfterBoot1: { hostname?: Buffer; secretKey?: Buffer } = {};
    it('ACPI power-off stops Tor, unmounts and powers off cleanly; Tor data is on the disk', async () => {
      assert.ok(vm);
      // Tor writes data of its own (an onion service's keys) to the state disk.
      const hs = await probe<{ auth: string; setconf: string }>('hs', password, '/state/tor/probe-hs');
      assert.equal(hs.setconf, '250 OK');
      await vm.powerdown(60_000);
      const seen = markers(vm.serial());
      assert.ok(seen.includes('shutdown requested') && seen.includes('shutdown complete'), JSON.stringify(seen));
      assert.ok(!seen.includes('warning: state disk not unmounted'));
      stateAfterBoot1 = (await readFromDisk(diskPath, '/tor/state'))?.toString('utf8');
      assert.match(stateAfterBoot1 ?? '', /^TorVersion Tor 0\.4\./m, 'Tor wrote its state file to the state disk');
      onionAfterBoot1 = { hostname: await readFromDisk(diskPath, '/tor/probe-hs/hostname'), secretKey: await readFromDisk(diskPath, '/tor/probe-hs/hs_ed25519_secret_key') };
      assert.match(onionAfterBoot1.hostname?.toString('utf8') ?? '', /^[a-z2-7]{56}\.onion\n$/);
      assert.ok((onionAfterBoot1.secretKey?.length ?? 0) > 64);
      // A clean unmount leaves nothing for e2fsck to fix.
      const fsck = await run('e2fsck', ['-n', '-f', diskPath], { timeoutMs: 60_000 });
      assert.equal(fsck.exitCode, 0);
    });

    it('second boot (small initramfs + system disk) keeps the disk and Tor data; Tor runs under its seccomp sandbox', async () => {
      const uuidBefore = (await run('tune2fs', ['-l', diskPath], { timeoutMs: 10_000 })).stdout.match(/UUID:\s+(\S+)/)?.[1];
      vm = await bootGuest({ arch, imageDir: image.dir, workDir: join(work, 'boot2'), ns, tap, hostMac, diskPath, controlPassword: password, config, sandbox: true, systemDisk: true });
      await vm.waitForSerial(/Opened Control listener connection \(ready\)/, budget.bootMs);
      await vm.waitForSerial(/Bootstrapped 0% \(starting\)/, budget.bootMs);
      const seen = markers(vm.serial());
      assert.ok(seen.includes('state disk ready'), JSON.stringify(seen));
      assert.ok(!seen.includes('state disk created') && !seen.some((m) => m.includes('recreated')), JSON.stringify(seen));
      const r = await probe<{ goodAuth: string; sandbox: string; user: string; geoip: string }>('control', password);
      assert.equal(r.goodAuth, '250 OK');
      assert.match(r.sandbox, /^250 Sandbox=1$/m);
      // Tor loaded the GeoIP database from the system disk, under the sandbox: public addresses have a country.
      assert.match(r.geoip, /^250-ip-to-country\/8\.8\.8\.8=[a-z]{2}$/m, r.geoip);
      assert.match(r.geoip, /^250-ip-to-country\/193\.11\.166\.194=[a-z]{2}$/m, r.geoip);
      assert.doesNotMatch(r.geoip, /=\?\?/, r.geoip);
      assert.match(r.user, /process\/user=tor\b/);
      assert.doesNotMatch(vm.serial(), /tor exited code=/, 'Tor must keep running under Sandbox 1');
      await vm.powerdown(60_000);
      const uuidAfter = (await run('tune2fs', ['-l', diskPath], { timeoutMs: 10_000 })).stdout.match(/UUID:\s+(\S+)/)?.[1];
      assert.ok(uuidBefore && uuidBefore === uuidAfter, 'the filesystem was not recreated');
      const stateAfterBoot2 = (await readFromDisk(diskPath, '/tor/state'))?.toString('utf8');
      assert.match(stateAfterBoot2 ?? '', /^TorVersion Tor 0\.4\./m);
      // The keys Tor generated in the first boot came through the reboot bit for bit.
      assert.deepEqual(await readFromDisk(diskPath, '/tor/probe-hs/hostname'), onionAfterBoot1.hostname);
      assert.deepEqual(await readFromDisk(diskPath, '/tor/probe-hs/hs_ed25519_secret_key'), onionAfterBoot1.secretKey);
    });
  });
}
