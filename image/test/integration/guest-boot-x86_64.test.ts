/** The guest image on x86_64 (q35, TCG). See ../guest-boot-suite.ts for what it proves. */
import { guestBootSuite } from '../guest-boot-suite.ts';

guestBootSuite('x86_64', { bootMs: 120_000, suiteMs: 300_000 });
