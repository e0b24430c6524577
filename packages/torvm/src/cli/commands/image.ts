/** `torvm image build [--arch] [--out] [--cache]` — a build-time tool; needs the repository's image/ workspace. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { TorvmError } from '../../core/errors.ts';
import type { CliIo } from '../context.ts';
import type { CommandRunnerFn } from '../main.ts';

export const DEFAULT_IMAGE_CACHE = '/var/cache/torvm-image';

interface ImageBuilderModule {
  buildImage(options: { arch: 'x86_64' | 'aarch64'; outDir: string; cacheDir: string; log: (line: string) => void }): Promise<unknown>;
}

export function registerImageCommands(program: Command, io: CliIo, run: CommandRunnerFn): void {
  const image = program.command('image').description('build the VM image');
  image.command('build')
    .description('build the guest kernel and initramfs from pinned Debian packages')
    .addOption(new Option('--arch <arch>', 'guest architecture').choices(['x86_64', 'aarch64']).default('x86_64'))
    .option('--out <dir>', 'output directory', '/var/lib/torvm/image')
    .option('--cache <dir>', 'package cache (outside the repository)', DEFAULT_IMAGE_CACHE)
    .action(run(async (opts) => {
      const o = opts as typeof opts & { arch: 'x86_64' | 'aarch64'; out: string; cache: string };
      // image/ is build-time only: the runtime never imports it, so load it lazily here.
      const url = new URL('../../../../../image/src/build.ts', import.meta.url);
      let builder: ImageBuilderModule;
      try {
        builder = (await import(url.href)) as ImageBuilderModule;
      } catch (err) {
        throw new TorvmError('ERR_IMAGE_BUILD', 'the image builder (image/ in the TorVM repository) is not available', { cause: err, hint: 'run this from a checkout of the TorVM repository' });
      }
      const manifest = await builder.buildImage({ arch: o.arch, outDir: o.out, cacheDir: o.cache, log: (l) => io.err(l) });
      io.out(opts.json ? JSON.stringify(manifest, null, 2) : `image written to ${o.out}`);
      return 0;
    }));
}
