// Headless Chromium for the site tests: Debian's `chromium` driven by npm
// playwright-core (its own browser download is not used), axe-core for
// accessibility, screenshots under test-results/.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT } from './helpers.mjs';

export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
/** A test option: skip where Chromium is missing (scripts/install-clients.sh installs it), never in CI. */
export const skipWithoutChromium = !CHROMIUM && !process.env.CI ? 'chromium is not installed (bash scripts/install-clients.sh)' : false;

export const RESULTS = join(ROOT, 'test-results');
/** Viewport widths every page is shot at. */
export const VIEWPORTS = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 900 } };

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Launches headless Chromium; close it with `browser.close()`. */
export async function launch() {
  assert.ok(CHROMIUM, 'chromium is not installed (bash scripts/install-clients.sh)');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-extensions', '--no-first-run'],
  });
}

/**
 * A fresh browser context (own cookies) at the given viewport. Page errors
 * and CSP violations are collected in `context.problems`, so a test can
 * assert that a page ran cleanly.
 */
export async function newContext(browser, { viewport = VIEWPORTS.desktop, ...options } = {}) {
  const context = await browser.newContext({ viewport, ...options });
  context.problems = [];
  context.on('page', (page) => watch(page, context.problems));
  return context;
}

function watch(page, problems) {
  page.on('pageerror', (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) problems.push(`console error on ${page.url()}: ${m.text()}`);
  });
}

/**
 * Runs axe-core on the page as it is now and fails on any serious or
 * critical violation, naming the rule and the elements.
 */
export async function checkAxe(page, label = page.url()) {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const describe = bad.map((v) => `${v.impact} ${v.id}: ${v.help}\n    ${v.nodes.slice(0, 5).map((n) => n.target.join(' ')).join('\n    ')}`);
  assert.equal(bad.length, 0, `axe-core on ${label}:\n  ${describe.join('\n  ')}`);
  return result.violations;
}

/** Saves a full-page screenshot as test-results/<name>.png; returns the path. */
export async function screenshot(page, name) {
  mkdirSync(RESULTS, { recursive: true });
  const path = join(RESULTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * Opens `url` at each viewport width, waits for `ready` (a selector, or a
 * function of the page), checks axe, and saves `<name>-<width>.png`.
 */
export async function shootEverywhere(context, url, name, { ready = 'body[data-ready="true"]' } = {}) {
  const page = await context.newPage();
  try {
    for (const [width, viewport] of Object.entries(VIEWPORTS)) {
      await page.setViewportSize(viewport);
      await page.goto(url);
      if (typeof ready === 'string') await page.waitForSelector(ready);
      else await ready(page);
      await checkAxe(page, `${name} (${width})`);
      await screenshot(page, `${name}-${width}`);
    }
  } finally {
    await page.close();
  }
}
