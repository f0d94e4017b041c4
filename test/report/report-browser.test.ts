// The report in a real browser: Debian's chromium, headless, driven by playwright-core. The page
// renders, every chart has data points (read from Chart.js's own instances), the console has no
// errors, and the page asks for nothing over the network. Skips, saying why, when chromium is
// not installed (Debian: apt-get install chromium).
//
// IMAGERATE_REPORT_HTML=<file> renders that report instead of one built from the fixtures, and
// IMAGERATE_SCREENSHOT=<png> saves a full-page screenshot, or its top IMAGERATE_SCREENSHOT_HEIGHT
// pixels (docs/report-screenshot.png is made so).
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildReport } from '../../src/report/html.js';
import { readRecords } from '../../src/bench/record.js';

const CHROMIUM = process.env.IMAGERATE_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const A = join(import.meta.dirname, 'fixtures', 'run-a.jsonl');
const B = join(import.meta.dirname, 'fixtures', 'run-b.jsonl');

let playwright: typeof import('playwright-core') | null = null;
let why = '';
if (!existsSync(CHROMIUM)) why = `${CHROMIUM} not found (install Debian's chromium: apt-get install -y chromium)`;
else {
  try {
    playwright = await import('playwright-core');
  } catch (e) {
    why = `playwright-core not installed: ${(e as Error).message}`;
  }
}
if (why) console.log(`[skip] report browser test: ${why}`);

describe.skipIf(!!why)('HTML report in headless Chromium', () => {
  it('renders, every chart has points, no console errors, no network requests', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imagerate-browser-'));
    const browser = await playwright!.chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
    try {
      let file = process.env.IMAGERATE_REPORT_HTML;
      if (!file) {
        file = join(dir, 'report.html');
        writeFileSync(file, buildReport([{ file: A, records: readRecords(A) }, { file: B, records: readRecords(B) }], { title: 'fixture report' }));
      }
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url()); });
      await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
      const charts = await page.evaluate(() => {
        const C = (globalThis as unknown as { Chart: { instances: Record<string, { canvas: HTMLCanvasElement; data: { datasets: { data: unknown[] }[] } }> } }).Chart;
        return Object.values(C.instances).map((c) => ({
          id: c.canvas.id,
          points: c.data.datasets.reduce((s, d) => s + d.data.length, 0),
          drawn: c.canvas.width > 0 && c.canvas.height > 0,
        }));
      });
      const canvases = await page.$$eval('canvas', (cs) => cs.map((c) => c.id));
      expect(charts.map((c) => c.id).sort()).toEqual(canvases.sort());
      expect(charts.length).toBeGreaterThanOrEqual(4);
      for (const c of charts) {
        expect(c.points, c.id).toBeGreaterThan(0);
        expect(c.drawn, c.id).toBe(true);
      }
      expect(await page.textContent('h1')).toBeTruthy();
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
      const shot = process.env.IMAGERATE_SCREENSHOT;
      const clip = Number(process.env.IMAGERATE_SCREENSHOT_HEIGHT ?? 0);
      if (shot) await page.screenshot({ path: shot, fullPage: true, ...(clip > 0 ? { clip: { x: 0, y: 0, width: 1280, height: clip } } : {}) });
    } finally {
      await browser.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
