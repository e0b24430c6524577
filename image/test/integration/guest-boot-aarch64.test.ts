/** The guest image on aarch64 (virt, TCG: about 3x slower than x86_64 here). See ../guest-boot-suite.ts. */
import { guestBootSuite } from '../guest-boot-suite.ts';

guestBootSuite('aarch64', { bootMs: 240_000, suiteMs: 480_000 });
