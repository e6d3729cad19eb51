// A real headless Chromium (Debian's `chromium`, installed by scripts/setup.sh --test) driven by
// puppeteer-core, which downloads no browser of its own. Missing Chromium fails the test, never skips it.
import fs from 'node:fs';
import path from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';
import { repo } from './repo.js';

export function chromiumBinary(): string {
  const bin = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
  if (!fs.existsSync(bin))
    throw new Error(`Chromium not found at ${bin}: run scripts/setup.sh --test (it installs Debian's chromium)`);
  return bin;
}

export async function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: chromiumBinary(),
    headless: true,
    // Tests run as root in CI, where Chromium's sandbox cannot start; the page is our own, on loopback.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'],
    timeout: 30_000,
  });
}

/** Where tests leave files for people to look at (screenshots): test-output/NAME, or $TEST_OUTPUT_DIR/NAME. */
export function outputDir(name: string): string {
  const dir = path.join(process.env.TEST_OUTPUT_DIR ?? path.join(repo, 'test-output'), name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
