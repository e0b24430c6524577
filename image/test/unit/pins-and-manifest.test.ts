import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPins } from '../../src/pins.ts';
import { ROOTS } from '../../src/pin.ts';
import { CA_BUNDLE, DATA_FILES, PROGRAMS, caBundle } from '../../src/rootfs.ts';
import { GEOIP_FILE } from '../../../packages/torvm/src/core/torrc.ts';
import { dependencyNames, parseStanzas } from '../../src/apt.ts';
import { parseImageManifest, readVerifiedImage, type ImageManifest } from '../../../packages/torvm/src/vm/image-manifest.ts';
import { isTorvmError } from '../../../packages/torvm/src/core/errors.ts';

describe('package pins', () => {
  for (const arch of ['x86_64', 'aarch64'] as const) {
    it(`${arch}: pins every guest program, the kernel, and nothing twice`, () => {
      const pins = loadPins(arch);
      const names = pins.packages.map((p) => p.name);
      assert.equal(new Set(names).size, names.length);
      for (const root of ROOTS) assert.ok(names.includes(root), `${root} is not pinned`);
      for (const prog of PROGRAMS) assert.ok(names.includes(prog.pkg), `${prog.pkg} is not pinned`);
      for (const file of DATA_FILES) assert.ok(names.includes(file.pkg), `${file.pkg} is not pinned`);
      assert.ok(names.includes(pins.kernelPackage));
      assert.equal(pins.kernelPackage, `linux-image-${pins.kernelRelease}`);
      assert.ok(pins.packages.every((p) => p.architecture === pins.debianArch || p.architecture === 'all'));
    });
  }
});

describe('GeoIP data', () => {
  it('the image ships the GeoIP file the torrc names (IPv4 only: RAM)', () => {
    assert.ok(DATA_FILES.some((f) => f.pkg === 'tor-geoipdb' && f.path === GEOIP_FILE));
    assert.ok(!DATA_FILES.some((f) => f.path.endsWith('geoip6')));
  });
});

describe('TLS root store', () => {
  it('concatenates every root of ca-certificates in name order, each ending in a newline; refuses an empty package', () => {
    const root = mkdtempSync(join(tmpdir(), 'tvca-'));
    try {
      const dir = join(root, CA_BUNDLE.sourceDir);
      mkdirSync(dir, { recursive: true });
      for (let i = 60; i > 0; i--) writeFileSync(join(dir, `Root_${String(i).padStart(2, '0')}.crt`), i % 2 ? `PEM ${i}\n` : `PEM ${i}`);
      writeFileSync(join(dir, 'README'), 'not a certificate');
      const bundle = caBundle(new Map([[CA_BUNDLE.pkg, root]])).toString();
      const lines = bundle.split('\n');
      assert.equal(lines.length, 61);
      assert.equal(lines[0], 'PEM 1');
      assert.equal(lines[59], 'PEM 60');
      assert.throws(() => caBundle(new Map([[CA_BUNDLE.pkg, join(root, 'nothing')]])), /0 root certificates/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('apt output parsing', () => {
  it('reads stanzas with continuation lines, and first alternatives of dependencies', () => {
    const [s] = parseStanzas('Package: tor\nVersion: 0.4.9.11-0+deb12u1\nDescription: x\n more text\nSHA256: ab\n\n');
    assert.equal(s?.Package, 'tor');
    assert.equal(s?.Description, 'x\nmore text');
    assert.deepEqual(dependencyNames('libc6 (>= 2.34), libssl3 | libssl1.1, zlib1g:any (>= 1:1.1.4)'), ['libc6', 'libssl3', 'zlib1g']);
  });
});

describe('image manifest (controller side)', () => {
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const kernel = Buffer.from('kernel bytes');
  const initramfs = Buffer.from('initramfs bytes');
  const small = Buffer.from('small');
  const system = Buffer.from('hsqs system');
  const manifest: ImageManifest = {
    schemaVersion: 1, arch: 'x86_64', kernelRelease: '6.1.0-56-cloud-amd64',
    artifacts: {
      kernel: { file: 'vmlinuz', sha256: sha(kernel), size: kernel.length },
      initramfs: { file: 'initramfs.img', sha256: sha(initramfs), size: initramfs.length },
      initramfsSmall: { file: 'initramfs-small.img', sha256: sha(small), size: small.length },
      systemDisk: { file: 'system.img', sha256: sha(system), size: system.length },
    },
    systemDiskSerial: 'torvm-system',
    packages: [{ name: 'tor', version: '0.4.9.11-0+deb12u1', architecture: 'amd64', sha256: 'a'.repeat(64), size: 1, filename: 'pool/main/t/tor/tor.deb' }],
    modules: ['kernel/net/netfilter/nf_tables.ko'],
  };
  const withImage = async (files: Record<string, Buffer | string>, fn: (dir: string) => Promise<void>) => {
    const dir = mkdtempSync(join(tmpdir(), 'tvimg-manifest-'));
    try {
      for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('verifies the artifacts against their hashes', async () => {
    await withImage({ 'manifest.json': JSON.stringify(manifest), vmlinuz: kernel, 'initramfs.img': initramfs, 'initramfs-small.img': small, 'system.img': system }, async (dir) => {
      const image = await readVerifiedImage(dir, 'x86_64');
      assert.equal(image.kernelPath, join(dir, 'vmlinuz'));
      assert.equal(image.systemDiskPath, join(dir, 'system.img'));
      assert.equal(image.manifest.kernelRelease, '6.1.0-56-cloud-amd64');
    });
  });

  it('refuses a changed artifact, a missing one, the wrong arch, and a malformed manifest', async () => {
    const isMissing = (e: unknown) => isTorvmError(e, 'ERR_IMAGE_MISSING');
    await withImage({ 'manifest.json': JSON.stringify(manifest), vmlinuz: kernel, 'initramfs.img': 'initramfs byteZ', 'initramfs-small.img': small, 'system.img': system }, async (dir) => {
      await assert.rejects(readVerifiedImage(dir), (e) => isMissing(e) && /does not match/.test((e as Error).message));
      await assert.rejects(readVerifiedImage(dir, 'aarch64'), (e) => isMissing(e) && /not aarch64/.test((e as Error).message));
    });
    await withImage({ 'manifest.json': JSON.stringify(manifest), vmlinuz: kernel, 'initramfs.img': initramfs, 'initramfs-small.img': small }, async (dir) => {
      await assert.rejects(readVerifiedImage(dir), (e) => isMissing(e) && /missing/.test((e as Error).message));
    });
    await withImage({}, async (dir) => { await assert.rejects(readVerifiedImage(dir), isMissing); });
    assert.throws(() => parseImageManifest('{'), isMissing);
    const escaping = structuredClone(manifest);
    escaping.artifacts.kernel.file = '../../etc/passwd';
    assert.throws(() => parseImageManifest(JSON.stringify(escaping)), isMissing);
  });
});
