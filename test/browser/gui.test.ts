/**
 * The web GUI in a real browser against a really running daemon: the private
 * Tor network harness, `torvm --headless` (service mode) in its host
 * namespace, and Debian's Chromium in the same namespace. One bring-up for
 * the whole file: render every tab, validate bridges, Start (bootstrap to
 * 100 seen in the progress bar, logs streaming live), screenshots, Stop.
 *
 * Screenshots go to a temp dir; with UPDATE_SCREENSHOTS=1 they go to
 * docs/screenshots/ (the README shows them).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { startTorNetwork, type TorNetwork } from '../harness/tor-network.ts';
import { skipUnlessPrerequisites } from '../harness/prerequisites.ts';
import { writeTorvmConfig } from '../e2e/torvm-run.ts';
import { buildGui, CHROMIUM, launchChromiumIn, startService, type ServiceRun } from './gui-daemon.ts';

const imageDir = process.env.TORVM_IMAGE_DIR ?? '/tmp/torvm-img-x86';
function skipReason(): string | false {
  const base = skipUnlessPrerequisites(['qemu-system-x86_64']);
  if (base) return base;
  const missing = [CHROMIUM, join(imageDir, 'manifest.json')].filter((p) => !existsSync(p));
  if (missing.length === 0) return false;
  if (process.env.CI) throw new Error(`CI must run the browser tests, but these are missing: ${missing.join(', ')}`);
  return `missing: ${missing.join(', ')}`;
}
const skip = skipReason();

const SCREENSHOT_DIR = process.env.UPDATE_SCREENSHOTS ? new URL('../../docs/screenshots/', import.meta.url).pathname : null;
const TABS = ['status', 'bridges', 'proxy', 'settings', 'logs'] as const;

// A well-formed obfs4 line with documentation addresses (RFC 5737): never contacted, as bridges stay off.
const GOOD_BRIDGE = 'obfs4 192.0.2.10:443 0123456789ABCDEF0123456789ABCDEF01234567 cert=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA iat-mode=0';
const BAD_BRIDGE = 'obfs4 192.0.2.11:443 0123456789ABCDEF0123456789ABCDEF01234567 iat-mode=0';

/** The few page globals the tests read (the root tsconfig has no DOM types; the page's CSP forbids string eval). */
interface PageGlobals { document: { activeElement: { id: string } | null; documentElement: { dataset: Record<string, string | undefined> } } }

async function openTab(page: Page, id: (typeof TABS)[number]): Promise<void> {
  await page.click(`#tab-${id}`);
  await page.waitForSelector(`#panel-${id}:not([hidden])`, { timeout: 10_000 });
}

describe('web GUI against a running daemon', { skip, timeout: 900_000 }, () => {
  let dir: string;
  let network: TorNetwork | null = null;
  let service: ServiceRun | null = null;
  let browser: Browser | null = null;
  let page: Page;
  let logPage: Page;
  let configPath: string;
  let shotDir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), `torvm-gui-${process.pid}-`));
    shotDir = SCREENSHOT_DIR ?? join(dir, 'screenshots');
    mkdirSync(shotDir, { recursive: true });
    const guiDir = join(dir, 'gui-dist');
    buildGui(guiDir);
    network = await startTorNetwork();
    configPath = writeTorvmConfig(network, dir, imageDir);
    service = await startService(network, configPath, join(dir, 'run', 'torvm.sock'), guiDir);
    browser = await launchChromiumIn(network.namespaces.host, dir);
    const context = await browser.newContext({ viewport: { width: 1100, height: 820 }, colorScheme: 'light' });
    page = await context.newPage();
    await page.goto(service.guiUrl, { timeout: 30_000 });
    await page.waitForSelector('.conn-up', { timeout: 30_000 });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    if (service && service.child.exitCode === null) {
      await service.socket('POST', '/v1/stop', { kind: 'user-stop' }).catch(() => {});
      service.child.kill('SIGTERM');
      const timer = setTimeout(() => service?.child.kill('SIGKILL'), 60_000);
      await service.exited;
      clearTimeout(timer);
    }
    await network?.stop();
    if (process.env.TORVM_KEEP_TEST_DIR) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  });

  it('takes the token out of the address bar and shows the testing badge', async () => {
    assert.doesNotMatch(page.url(), /token/);
    assert.equal(await page.textContent('#testing-badge'), 'TESTING NETWORK');
    assert.equal(await page.textContent('#state'), 'Stopped');
  });

  it('renders every tab, reachable by keyboard (arrow keys move along the tablist)', async () => {
    await page.focus('#tab-status');
    for (const id of TABS.slice(1)) {
      await page.keyboard.press('ArrowRight');
      await page.waitForSelector(`#panel-${id}:not([hidden])`, { timeout: 10_000 });
      assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).document.activeElement?.id), `tab-${id}`);
    }
    await openTab(page, 'bridges');
    await page.waitForSelector('#bridge-paste');
    await openTab(page, 'proxy');
    await page.waitForSelector('#proxy-type');
    await openTab(page, 'settings');
    assert.equal(await page.inputValue('#settings-memory'), '128');
    await openTab(page, 'logs');
    await page.waitForSelector('#log-lines');
    await openTab(page, 'status');
    await page.waitForSelector('.states li.current');
    assert.equal(await page.textContent('.states li.current'), 'Stopped');
    assert.equal(await page.locator('.states li').count(), 16, '15 lifecycle states plus Stopped');
  });

  it("shows the validator's own message for a bad bridge line and saves nothing", async () => {
    await openTab(page, 'bridges');
    await page.fill('#bridge-paste', `${GOOD_BRIDGE}\n${BAD_BRIDGE}`);
    await page.waitForSelector('#bridge-check li.bad');
    const message = await page.textContent('#bridge-check li.bad');
    assert.match(message ?? '', /line 2: This line .*cert/);
    await page.click('#bridges-save');
    assert.match(await page.textContent('#bridges-message') ?? '', /Nothing was saved/);
    const saved = await service!.socket('GET', '/v1/bridges');
    assert.deepEqual((saved.json as { lines: string[] }).lines, []);
    assert.doesNotMatch(readFileSync(configPath, 'utf8'), /192\.0\.2\.1[01]/);
  });

  it('saves a good bridge line (bridges left off), in the GUI and the config file', async () => {
    await page.fill('#bridge-paste', GOOD_BRIDGE);
    await page.waitForSelector('#bridge-check li.good');
    await page.click('#bridges-save');
    await page.waitForSelector('#bridges-message', { timeout: 15_000 });
    assert.match(await page.textContent('#bridges-message') ?? '', /^Saved/);
    assert.match(await page.textContent('#bridge-list') ?? '', /obfs4 192\.0\.2\.10:443/);
    const saved = await service!.socket('GET', '/v1/bridges');
    assert.deepEqual((saved.json as { lines: string[]; enabled: boolean }).lines, [GOOD_BRIDGE]);
    assert.equal((saved.json as { enabled: boolean }).enabled, false);
    assert.match(readFileSync(configPath, 'utf8'), /192\.0\.2\.10:443/);
  });

  it("shows the server's refusal: bridges on with no line and no built-ins", async () => {
    await page.click('#bridge-list button');
    await page.check('#bridges-enabled');
    await page.click('#bridges-save');
    await page.waitForSelector('#bridges-message.error', { timeout: 15_000 });
    assert.match(await page.textContent('#bridges-message') ?? '', /The daemon refused: .*no bridge line/);
    assert.equal(((await service!.socket('GET', '/v1/bridges')).json as { lines: string[] }).lines.length, 1, 'the refused change saved nothing');
    await page.reload();
    await page.waitForSelector('.conn-up', { timeout: 30_000 });
  });

  it('saves settings and says they apply at the next start; refuses bad memory', async () => {
    await openTab(page, 'settings');
    await page.fill('#settings-memory', '12');
    await page.click('#settings-save');
    assert.match(await page.textContent('#settings-message') ?? '', /Nothing was saved/);
    await page.fill('#settings-memory', '160');
    await page.click('#settings-save');
    await page.waitForSelector('#settings-message:not(.error)', { timeout: 15_000 });
    assert.match(await page.textContent('#settings-message') ?? '', /next time TorVM starts/);
    assert.equal(JSON.parse(readFileSync(configPath, 'utf8')).vm.memoryMiB, 160);
    // Back to the default, so the run below is the usual one.
    await page.fill('#settings-memory', '128');
    await page.click('#settings-save');
    await page.waitForSelector('#settings-message:not(.error):has-text("Saved")', { timeout: 15_000 });
    assert.equal(JSON.parse(readFileSync(configPath, 'utf8')).vm.memoryMiB, 128);
  });

  it('Start: the state reaches Running, the progress bar follows bootstrap to 100, logs stream live', async () => {
    // A second tab on the Logs tab: lines must arrive there without a reload.
    logPage = await page.context().newPage();
    await logPage.goto(service!.guiUrl, { timeout: 30_000 });
    await logPage.waitForSelector('.conn-up', { timeout: 30_000 });
    await openTab(logPage, 'logs');
    assert.doesNotMatch(await logPage.textContent('#log-lines') ?? '', /\[serial\]/);

    await openTab(page, 'status');
    await page.click('#start');
    const seen: number[] = [];
    const deadline = Date.now() + 400_000;
    for (;;) {
      const [state, progress] = await Promise.all([page.textContent('#state'), page.getAttribute('#bootstrap', 'value')]);
      const value = Number(progress);
      if (seen[seen.length - 1] !== value) seen.push(value);
      if (state === 'Running' && value === 100) break;
      if (state === 'Stopped' && seen.length > 1) assert.fail(`the run stopped: ${await page.textContent('#last-error').catch(() => '')}\n${service!.output().slice(-3000)}`);
      if (Date.now() > deadline) assert.fail(`no Running/100 in time; seen ${seen.join(',')}\n${service!.output().slice(-3000)}`);
      await page.waitForTimeout(150);
    }
    assert.equal(seen[seen.length - 1], 100);
    assert.ok(seen.some((v) => v > 0 && v < 100), `intermediate bootstrap values seen: ${seen.join(',')}`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]!, `progress never goes back: ${seen.join(',')}`);
    assert.equal(await page.textContent('.states li.current'), 'Running');
    // The kill switch moves to "connected" just after Running.
    await page.waitForSelector('#killswitch.ks-connected', { timeout: 30_000 });
    assert.match(await page.textContent('#killswitch') ?? '', /only Tor traffic/);

    // The log tab, never reloaded, now holds the VM's serial console and the lifecycle.
    await logPage.waitForSelector('#log-lines:has-text("[serial]")', { timeout: 30_000 });
    assert.match(await logPage.textContent('#log-lines') ?? '', /\[lifecycle\]/);
  });

  it('filters logs by source and search', async () => {
    await logPage.selectOption('#log-source', 'serial');
    const serialOnly = await logPage.textContent('#log-lines') ?? '';
    assert.ok(serialOnly.length > 0);
    for (const line of serialOnly.split('\n')) assert.match(line, /\[serial\]/);
    await logPage.selectOption('#log-source', 'all');
    await logPage.fill('#log-search', 'no-such-text-anywhere-42');
    assert.equal((await logPage.textContent('#log-lines'))?.trim(), '');
    await logPage.close();
  });

  it('takes a screenshot of every tab, light and dark', async () => {
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const id of TABS) {
        await openTab(page, id);
        if (id === 'logs') await page.waitForSelector('#log-lines');
        const file = join(shotDir, `${id}-${scheme}.png`);
        await page.screenshot({ path: file });
        assert.ok(statSync(file).size > 5000, `${file} has content`);
      }
    }
    await page.emulateMedia({ colorScheme: 'light' });
    // The toggle overrides the system preference.
    await page.click('#theme-toggle');
    assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).document.documentElement.dataset.theme), 'light');
    await page.click('#theme-toggle');
    assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).document.documentElement.dataset.theme), 'dark');
    await page.click('#theme-toggle');
    assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).document.documentElement.dataset.theme), undefined);
  });

  it('Stop: the state goes to Stopped and the kill switch is released', async () => {
    await openTab(page, 'status');
    await page.click('#stop');
    await page.waitForSelector('#state:text-is("Stopped")', { timeout: 180_000 });
    assert.equal(await page.textContent('.states li.current'), 'Stopped');
    await page.waitForSelector('#killswitch.ks-off', { timeout: 30_000 });
    const status = (await service!.socket('GET', '/v1/status')).json as { ended: { reason: string } | null };
    assert.equal(status.ended?.reason, 'user-stop');
  });
});
