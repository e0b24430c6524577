/**
 * The web GUI in a real browser against a really running daemon: the private
 * Tor network harness, `torvm --headless` (service mode) in its host
 * namespace, and Debian's Chromium in the same namespace. One bring-up for
 * the whole file: render every tab, validate bridges and the proxy, Start
 * (bootstrap to 100 seen in the progress bar, logs streaming live), New
 * identity and its rate limit, a real bridge applied live (Tor back at 100,
 * first hop the bridge), logs filtered, copied and downloaded, screenshots
 * (light, dark, 200% zoom), the keyboard alone, Stop.
 *
 * Screenshots go to a temp dir; with UPDATE_SCREENSHOTS=1 they go to
 * docs/screenshots/ (the README shows them).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTorNetwork, type TorNetwork } from '../harness/tor-network.ts';
import { skipUnlessPrerequisites } from '../harness/prerequisites.ts';
import { writeTorvmConfig } from '../e2e/torvm-run.ts';
import { buildGui, CHROMIUM, launchChromiumIn, startService, type ServiceRun } from './gui-daemon.ts';
import { focused, horizontalOverflow, tabThroughPanel, visibleBox } from './gui-checks.ts';

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

/** The status as the daemon reports it on its socket (a subset). */
interface SocketStatus { state: string; bootstrap: { progress: number }; tor: { circuits: Array<{ status: string; hops: Array<{ fingerprint: string | null }> }> } }

/** The primary controls of each tab, which must stay visible and reachable (at 200% zoom, by keyboard). */
const PRIMARY: Record<(typeof TABS)[number], string[]> = {
  status: ['#stop', '#newnym'],
  bridges: ['#bridges-enabled', '#bridge-paste', '#bridges-save'],
  proxy: ['#proxy-type', '#proxy-save'],
  settings: ['#settings-memory', '#settings-save'],
  logs: ['#log-level', '#log-search', '#log-follow', '#log-copy', '#log-download'],
};

async function openTab(page: Page, id: (typeof TABS)[number]): Promise<void> {
  await page.click(`#tab-${id}`);
  await page.waitForSelector(`#panel-${id}:not([hidden])`, { timeout: 10_000 });
}

describe('web GUI against a running daemon', { skip, timeout: 900_000 }, () => {
  let dir: string;
  let network: TorNetwork | null = null;
  let service: ServiceRun | null = null;
  let browser: Browser | null = null;
  let context: BrowserContext;
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
    context = await browser.newContext({ viewport: { width: 1100, height: 820 }, colorScheme: 'light', acceptDownloads: true });
    // Copy in the Logs tab writes the clipboard; the test reads it back.
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(service.guiUrl).origin });
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

  it("proxy: a bad port or host shows the validator's message inline and saves nothing", async () => {
    await openTab(page, 'proxy');
    const before = readFileSync(configPath, 'utf8');
    await page.selectOption('#proxy-type', 'socks5');
    await page.fill('#proxy-host', 'proxy.example');
    await page.fill('#proxy-port', '70000');
    await page.click('#proxy-save');
    await page.waitForSelector('#proxy-port-error', { timeout: 10_000 });
    assert.equal(await page.textContent('#proxy-port-error'), 'The port must be a port number 1–65535');
    assert.equal(await page.getAttribute('#proxy-port', 'aria-invalid'), 'true');
    assert.match(await page.textContent('#proxy-message') ?? '', /Nothing was saved/);

    await page.fill('#proxy-port', '1080');
    await page.fill('#proxy-host', 'proxy.example,evil');
    await page.click('#proxy-save');
    await page.waitForSelector('#proxy-host-error', { timeout: 10_000 });
    assert.equal(await page.textContent('#proxy-host-error'), 'The host must be an IPv4 address or a hostname of letters, digits, "-" and "."');
    assert.equal(await page.locator('#proxy-port-error').count(), 0, 'the fixed port no longer shows an error');
    assert.equal(readFileSync(configPath, 'utf8'), before, 'the config file is unchanged');

    // A text field cannot hold a newline, so that one goes to the same route table directly: refused, nothing saved.
    for (const host of ['proxy\nexample', 'proxy.example\nSocks5Proxy 6.6.6.6:1', 'a,b']) {
      const r = await service!.socket('PUT', '/v1/proxy', { type: 'socks5', host, port: 1080 });
      assert.equal(r.code, 400, JSON.stringify(r.json));
      assert.match((r.json as { error: { message: string } }).error.message, /tor\.proxy\.host: must be an IPv4 address or a hostname/);
    }
    assert.equal(readFileSync(configPath, 'utf8'), before, 'the config file is unchanged');
  });

  it('proxy: a good one is saved, shown back after a reload, and the password is never echoed', async () => {
    const password = 'pw-Zq7-never-shown';
    await page.fill('#proxy-host', 'proxy.example');
    await page.fill('#proxy-username', 'alice');
    await page.fill('#proxy-password', password);
    await page.click('#proxy-save');
    await page.waitForSelector('#proxy-message:not(.error)', { timeout: 15_000 });
    assert.match(await page.textContent('#proxy-message') ?? '', /^Saved\. Tor is not running/);
    const saved = JSON.parse(readFileSync(configPath, 'utf8')) as { tor: { proxy: unknown } };
    assert.deepEqual(saved.tor.proxy, { type: 'socks5', host: 'proxy.example', port: 1080, username: 'alice', password });

    await page.reload();
    await page.waitForSelector('.conn-up', { timeout: 30_000 });
    await openTab(page, 'proxy');
    await page.waitForSelector('#proxy-host', { timeout: 10_000 });
    assert.equal(await page.inputValue('#proxy-type'), 'socks5');
    assert.equal(await page.inputValue('#proxy-host'), 'proxy.example');
    assert.equal(await page.inputValue('#proxy-port'), '1080');
    assert.equal(await page.inputValue('#proxy-username'), 'alice');
    assert.equal(await page.inputValue('#proxy-password'), '', 'the password field starts empty');
    assert.match(await page.textContent('label[for="proxy-password"]') ?? '', /saved/);
    assert.ok(!(await page.content()).includes(password), 'the page never holds the password');
    assert.ok(!JSON.stringify((await service!.socket('GET', '/v1/proxy')).json).includes(password), 'the API never sends it');

    // Back to no proxy, so the run below connects directly.
    await page.selectOption('#proxy-type', 'none');
    await page.click('#proxy-save');
    await page.waitForSelector('#proxy-message:not(.error)', { timeout: 15_000 });
    assert.deepEqual((JSON.parse(readFileSync(configPath, 'utf8')) as { tor: { proxy: unknown } }).tor.proxy, { type: 'none' });
  });

  it('Start: the state reaches Running, the progress bar follows bootstrap to 100, logs stream live', async () => {
    // A second tab on the Logs tab: lines must arrive there without a reload.
    logPage = await context.newPage();
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

  it("New identity shows Tor's answer, and a second click at once shows the rate limit", async () => {
    // Reopening the tab mounts the controls afresh, so answers count from 1.
    await openTab(page, 'logs');
    await openTab(page, 'status');
    const answer = async (n: number) => {
      await page.click('#newnym');
      await page.waitForSelector(`#control-message[data-answer="${n}"]`, { timeout: 30_000 });
      return { text: await page.textContent('#control-message') ?? '', kind: await page.getAttribute('#control-message', 'data-kind') };
    };
    const first = await answer(1);
    // Either answer is Tor's: applied now, or already held back by its rate limit.
    if (first.kind === 'info') assert.equal(first.text, 'New identity: new circuits will be used for new connections.');
    else assert.match(first.text, /^(Tor rate-limits new identities: it applies this one in \d+ s|Tor already has a new identity pending)\.$/);
    const second = await answer(2);
    assert.equal(second.kind, 'warn', second.text);
    assert.match(second.text, /^(Tor rate-limits new identities: it applies this one in \d+ s|Tor already has a new identity pending)\.$/);
    assert.match(await page.getAttribute('#control-message', 'class') ?? '', /\bwarn\b/);
  });

  it('a real bridge line is saved and applied live: Tor uses it, reaches 100% again, and the host still gets through', async () => {
    const relay = network!.relays.find((r) => r.role === 'relay');
    assert.ok(relay, 'the harness has a non-exit relay to use as a bridge');
    const line = `${relay.address}:${relay.orPort} ${relay.fingerprint}`;
    await openTab(page, 'bridges');
    await page.waitForSelector('#bridges-live:has-text("connects directly")', { timeout: 15_000 });
    // The earlier, never-contacted documentation bridge goes; the harness relay comes in.
    await page.click('button[aria-label="Remove bridge obfs4 192.0.2.10:443"]');
    await page.fill('#bridge-paste', line);
    await page.waitForSelector('#bridge-check li.good', { timeout: 10_000 });
    assert.match(await page.textContent('#bridge-check') ?? '', new RegExp(`vanilla ${relay.address.replace(/\./g, '\\.')}:${relay.orPort} looks right`));
    await page.check('#bridges-enabled');
    await page.click('#bridges-save');
    await page.waitForSelector('#bridges-message', { timeout: 30_000 });
    assert.equal(await page.textContent('#bridges-message'), 'Saved and applied: Tor uses these bridges now.');

    const saved = (await service!.socket('GET', '/v1/bridges')).json as { enabled: boolean; lines: string[] };
    assert.deepEqual(saved, { ...saved, enabled: true, lines: [line] });
    const file = JSON.parse(readFileSync(configPath, 'utf8')) as { tor: { bridges: { enabled: boolean; lines: string[] } } };
    assert.deepEqual(file.tor.bridges.lines, [line]);
    assert.equal(file.tor.bridges.enabled, true);
    // Tor's own view (GETCONF UseBridges Bridge), through the same route table the GUI uses.
    const live = (await service!.socket('GET', '/v1/bridges/live')).json;
    assert.deepEqual(live, { running: true, useBridges: true, bridges: [{ transport: 'vanilla', address: `${relay.address}:${relay.orPort}`, fingerprint: relay.fingerprint }] });
    await page.waitForSelector('#bridges-live[data-use-bridges="true"]', { timeout: 15_000 });
    assert.equal(await page.textContent('#bridges-live'), `In use by Tor now: vanilla ${relay.address}:${relay.orPort} (${relay.fingerprint.slice(0, 8)}…).`);

    // Tor at 100% again, with a built circuit whose first hop is the bridge.
    let status: SocketStatus | null = null;
    const deadline = Date.now() + 240_000;
    while (Date.now() < deadline) {
      status = (await service!.socket('GET', '/v1/status')).json as SocketStatus;
      if (status.state === 'Running' && status.bootstrap.progress === 100 && status.tor.circuits.some((c) => c.status === 'BUILT' && c.hops[0]?.fingerprint === relay.fingerprint)) break;
      status = null;
      await page.waitForTimeout(1000);
    }
    assert.ok(status, `no circuit through the bridge at bootstrap 100 within 240 s\n${service!.output().slice(-2000)}`);
    await page.waitForSelector('#bridges-bootstrap:has-text("Tor bootstrap: 100%")', { timeout: 15_000 });
    // And the host's own TCP still goes through: into the VM, through Tor, out of the exit.
    const fetch = spawnSync('ip', ['netns', 'exec', network!.namespaces.host, 'curl', '-sS', '-m', '60', '-o', '/dev/null', '-w', '%{http_code}', network!.http.url], { encoding: 'utf8', timeout: 90_000 });
    assert.equal(fetch.stdout, '200', fetch.stderr);
  });

  it('filters logs by source and search', async () => {
    await logPage.selectOption('#log-source', 'serial');
    const serialOnly = await logPage.textContent('#log-lines') ?? '';
    assert.ok(serialOnly.length > 0);
    for (const line of serialOnly.split('\n')) assert.match(line, /\[serial\]/);
    await logPage.selectOption('#log-source', 'all');
    await logPage.fill('#log-search', 'no-such-text-anywhere-42');
    assert.equal((await logPage.textContent('#log-lines'))?.trim(), '');
  });

  it('logs: the level filter narrows the lines; Copy and Download hold exactly the filtered view', async () => {
    await logPage.fill('#log-search', '');
    const countAt = async () => Number(/^(\d+) of/.exec(await logPage.textContent('#log-count') ?? '')?.[1]);
    await logPage.selectOption('#log-level', 'debug');
    const debugCount = await countAt();
    await logPage.selectOption('#log-level', 'warn');
    const warnText = await logPage.textContent('#log-lines') ?? '';
    for (const l of warnText.split('\n').filter(Boolean)) assert.match(l, /^\S+ (warn |error|fatal) \[/, `a line below warn: ${l}`);
    await logPage.selectOption('#log-level', 'info');
    const infoCount = await countAt();
    assert.ok(infoCount > 0 && infoCount <= debugCount, `info ${infoCount} <= debug ${debugCount}`);
    assert.ok(warnText.split('\n').filter(Boolean).length < infoCount, 'warn and above is fewer lines than info and above');

    // Search narrows further; lifecycle lines stop arriving once Running, so this view holds still.
    await logPage.selectOption('#log-source', 'controller');
    await logPage.fill('#log-search', 'lifecycle');
    const view = await logPage.textContent('#log-lines') ?? '';
    const lines = view.split('\n').filter(Boolean);
    assert.ok(lines.length > 0 && lines.every((l) => /lifecycle/i.test(l)), view.slice(0, 500));
    assert.ok(lines.length < infoCount);

    await logPage.bringToFront();
    await logPage.click('#log-copy');
    await logPage.waitForSelector('#log-count:has-text("Copied")', { timeout: 10_000 });
    const clip = await logPage.evaluate(() => (globalThis as unknown as { navigator: { clipboard: { readText(): Promise<string> } } }).navigator.clipboard.readText());
    const viewAfterCopy = await logPage.textContent('#log-lines') ?? '';
    assert.ok(clip.length > 0 && viewAfterCopy.startsWith(clip), 'the clipboard holds the filtered view');
    assert.equal(clip.split('\n').length, Number(/Copied (\d+) lines/.exec(await logPage.textContent('#log-count') ?? '')?.[1]));

    const [download] = await Promise.all([logPage.waitForEvent('download', { timeout: 15_000 }), logPage.click('#log-download')]);
    assert.match(download.suggestedFilename(), /^torvm-log-.*\.txt$/);
    const downloaded = readFileSync(await download.path(), 'utf8');
    const viewAfterDownload = await logPage.textContent('#log-lines') ?? '';
    assert.ok(downloaded.length > 1 && `${viewAfterDownload}\n`.startsWith(downloaded), 'the file holds the filtered view');
    assert.ok(downloaded.startsWith(clip), 'the same lines as the clipboard');
    for (const l of downloaded.split('\n').filter(Boolean)) assert.match(l, /lifecycle/i);
    await logPage.close();
  });

  it('takes a screenshot of every tab, light and dark', async () => {
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const id of TABS) {
        await openTab(page, id);
        // Each tab loads its data after it opens: shoot the form, not "Loading…".
        await page.waitForSelector(PRIMARY[id][0]!, { timeout: 15_000 });
        await page.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0));
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

  it('at 200% zoom (640 CSS px wide) no tab scrolls sideways and the primary controls stay visible', async () => {
    // 200% zoom of a 1280-pixel window: the layout gets 640 CSS px, drawn at twice the density.
    const zoomed = await browser!.newContext({ viewport: { width: 640, height: 800 }, deviceScaleFactor: 2, colorScheme: 'light' });
    try {
      const z = await zoomed.newPage();
      await z.goto(service!.guiUrl, { timeout: 30_000 });
      await z.waitForSelector('.conn-up', { timeout: 30_000 });
      for (const id of TABS) {
        await openTab(z, id);
        await z.waitForSelector(PRIMARY[id][0]!, { timeout: 15_000 });
        assert.ok(await horizontalOverflow(z) <= 0, `${id}: the page scrolls sideways by ${await horizontalOverflow(z)} px`);
        for (const selector of PRIMARY[id]) {
          const box = await visibleBox(z, selector);
          assert.ok(box, `${id}: ${selector} is visible`);
          assert.ok(box.left >= 0 && box.right <= 640 && box.width > 0 && box.height > 0, `${id}: ${selector} inside the 640 px viewport: ${JSON.stringify(box)}`);
        }
        await z.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0));
        // CSS-pixel scale keeps the checked-in PNGs small; the layout is the 200% one.
        const file = join(shotDir, `${id}-zoom200.png`);
        await z.screenshot({ path: file, scale: 'css' });
        assert.ok(statSync(file).size > 3000, `${file} has content`);
      }
    } finally {
      await zoomed.close();
    }
  });

  it('works by keyboard alone: the tab bar, every control of each tab (each with a name), and a primary button', async (t) => {
    const k = await context.newPage();
    try {
      await k.goto(service!.guiUrl, { timeout: 30_000 });
      await k.waitForSelector('.conn-up', { timeout: 30_000 });
      await k.waitForSelector('#panel-status .states', { timeout: 15_000 });
      // From the top of the page, Tab reaches the tab bar (only the selected tab is a Tab stop).
      let stop = await focused(k);
      for (let i = 0; i < 10 && stop?.role !== 'tab'; i++) { await k.keyboard.press('Tab'); stop = await focused(k); }
      assert.equal(stop?.id, 'tab-status');
      await k.keyboard.press('End');
      await k.waitForSelector('#panel-logs:not([hidden])', { timeout: 10_000 });
      await k.keyboard.press('Home');
      await k.waitForSelector('#panel-status:not([hidden])', { timeout: 10_000 });

      for (const [i, id] of TABS.entries()) {
        if (i > 0) await k.keyboard.press('ArrowRight');
        await k.waitForSelector(`#panel-${id}:not([hidden])`, { timeout: 10_000 });
        await k.waitForSelector(PRIMARY[id][0]!, { timeout: 15_000 });
        assert.equal((await focused(k))?.id, `tab-${id}`);
        const stops = await tabThroughPanel(k, `panel-${id}`);
        const ids = stops.map((s) => `#${s.id}`);
        for (const selector of PRIMARY[id]) assert.ok(ids.includes(selector), `${id}: Tab reaches ${selector} (stops: ${ids.join(' ')})`);
        for (const s of stops) assert.ok(s.name.length > 0 && s.name.length < 80, `${id}: the stop ${s.tag}#${s.id} has a short accessible name: "${s.name}"`);
        t.diagnostic(`${id}: ${stops.map((s) => `${s.tag}#${s.id} "${s.name.slice(0, 30)}"`).join(', ')}`);
        // Back to the tab bar for the next arrow key, by Shift+Tab.
        for (let j = 0; j < 40 && (await focused(k))?.id !== `tab-${id}`; j++) await k.keyboard.press('Shift+Tab');
        assert.equal((await focused(k))?.id, `tab-${id}`, 'Shift+Tab leads back to the tab bar');
      }

      // A primary button, by keyboard only: Save settings.
      await k.keyboard.press('Home');
      await k.keyboard.press('ArrowLeft');
      await k.keyboard.press('ArrowLeft');
      await k.waitForSelector('#panel-settings:not([hidden]) #settings-save', { timeout: 15_000 });
      for (let i = 0; i < 20 && (await focused(k))?.id !== 'settings-save'; i++) await k.keyboard.press('Tab');
      assert.equal((await focused(k))?.id, 'settings-save');
      await k.keyboard.press('Enter');
      await k.waitForSelector('#settings-message:not(.error)', { timeout: 15_000 });
      assert.match(await k.textContent('#settings-message') ?? '', /^Saved\. Changes apply the next time TorVM starts\.$/);
    } finally {
      await k.close();
    }
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
