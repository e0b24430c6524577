/**
 * Page checks shared by the browser tests: what has keyboard focus (with an
 * approximation of its accessible name), a keyboard walk through one tab
 * panel, and the 200%-zoom layout checks. Page code runs through
 * page.evaluate with functions only: the GUI's CSP forbids string eval.
 */
import type { Page } from 'playwright-core';

/** The few DOM shapes the checks read (the root tsconfig has no DOM types). */
interface El {
  id: string;
  tagName: string;
  textContent: string | null;
  labels?: ArrayLike<El> | null;
  closest(selector: string): El | null;
  getAttribute(name: string): string | null;
  getBoundingClientRect(): { left: number; right: number; top: number; bottom: number; width: number; height: number };
}
interface Doc {
  activeElement: El | null;
  body: El;
  documentElement: { scrollWidth: number; clientWidth: number };
  getElementById(id: string): El | null;
}

/** One keyboard stop: the focused element and the name a screen reader would announce (roughly). */
export interface FocusStop { id: string; tag: string; role: string | null; name: string; panel: string | null }

/** Reads the focused element; "name" follows aria-label, aria-labelledby, <label>, then the text. */
export async function focused(page: Page): Promise<FocusStop | null> {
  return page.evaluate(() => {
    const d = (globalThis as unknown as { document: Doc }).document;
    const el = d.activeElement;
    if (!el || el === d.body) return null;
    // No named helpers in here: tsx's __name wrapper does not exist in the page.
    const labelledBy = (el.getAttribute('aria-labelledby') ?? '').split(/\s+/).map((i) => d.getElementById(i)?.textContent ?? '').join(' ');
    const label = el.labels && el.labels.length > 0 ? Array.from(el.labels).map((l) => l.textContent ?? '').join(' ') : '';
    const name = (el.getAttribute('aria-label') ?? '') || labelledBy.trim() || label || (el.textContent ?? '');
    return { id: el.id, tag: el.tagName.toLowerCase(), role: el.getAttribute('role'), name: name.replace(/\s+/g, ' ').trim(), panel: el.closest('[role="tabpanel"]')?.id ?? null };
  });
}

/**
 * Presses Tab from the current focus until it leaves `panelId` (or `max`
 * presses), returning every stop inside the panel in order.
 */
export async function tabThroughPanel(page: Page, panelId: string, max = 40): Promise<FocusStop[]> {
  const stops: FocusStop[] = [];
  let entered = false;
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const f = await focused(page);
    const inside = f !== null && (f.panel === panelId || f.id === panelId);
    if (inside) { entered = true; stops.push(f); } else if (entered) break;
  }
  return stops;
}

/** The page's horizontal overflow: document width minus viewport width, in CSS px (0 means no sideways scrolling). */
export async function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => {
    const e = (globalThis as unknown as { document: Doc }).document.documentElement;
    return e.scrollWidth - e.clientWidth;
  });
}

/** Scrolls `selector` into view; returns its box in CSS px, or null when it is not visible. */
export async function visibleBox(page: Page, selector: string): Promise<{ left: number; right: number; width: number; height: number } | null> {
  const locator = page.locator(selector).first();
  if (!(await locator.isVisible())) return null;
  await locator.scrollIntoViewIfNeeded({ timeout: 5000 });
  return page.evaluate((sel) => {
    const el = (globalThis as unknown as { document: { querySelector(s: string): El | null } }).document.querySelector(sel);
    if (!el) return null;
    const r = el.getBoundingClientRect();
    return { left: r.left, right: r.right, width: r.width, height: r.height };
  }, selector);
}
