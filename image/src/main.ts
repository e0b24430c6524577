/**
 * Command-line entry of the image builder (CI calls it before `npm test`):
 *   node --import tsx image/src/main.ts --arch x86_64 --out DIR [--cache DIR]
 */
import { parseArgs } from 'node:util';
import { buildImage } from './build.ts';
import { DEFAULT_CACHE_DIR } from './paths.ts';
import { describeError } from '../../packages/torvm/src/core/errors.ts';

const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: 'x86_64' },
    out: { type: 'string' },
    cache: { type: 'string', default: DEFAULT_CACHE_DIR },
  },
  strict: true,
});

if (values.arch !== 'x86_64' && values.arch !== 'aarch64') {
  console.error('image build: --arch must be x86_64 or aarch64');
  process.exit(2);
}
if (!values.out) {
  console.error('usage: main.ts --arch x86_64|aarch64 --out DIR [--cache DIR]');
  process.exit(2);
}

try {
  const started = Date.now();
  const manifest = await buildImage({ arch: values.arch, outDir: values.out, cacheDir: values.cache, log: (line) => console.error(`image: ${line}`) });
  console.log(JSON.stringify({ outDir: values.out, arch: manifest.arch, kernelRelease: manifest.kernelRelease, artifacts: manifest.artifacts, seconds: (Date.now() - started) / 1000 }, null, 2));
} catch (err) {
  console.error(`image build failed: ${describeError(err)}`);
  process.exit(1);
}
