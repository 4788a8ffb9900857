// What the browser scripts of tests/web share: their arguments, a watchdog, and Debian's headless
// chromium (through playwright-core: no browser download) in a throwaway profile, with its
// console errors collected.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

/// `--key value` pairs as an object; exits 1 naming the first missing required key.
export function parseArgs(required) {
  const args = Object.fromEntries(
    process.argv.slice(2).reduce((pairs, a, i, all) => {
      if (a.startsWith('--')) pairs.push([a.slice(2), all[i + 1]]);
      return pairs;
    }, []),
  );
  for (const key of required) {
    if (!args[key]) {
      console.error(`missing --${key}`);
      process.exit(1);
    }
  }
  return args;
}

/// Runs `work(page, consoleErrors)` in a fresh headless chromium, at most 60 s (exit 2), any
/// error being exit 1; the profile is removed afterwards.
export async function withBrowser(work) {
  const watchdog = setTimeout(() => {
    console.error('timed out after 60 s');
    process.exit(2);
  }, 60_000);
  const profile = mkdtempSync(join(tmpdir(), 'tessera-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      ignoreHTTPSErrors: true, // the test server's certificate is self-signed
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--ignore-certificate-errors', // for wss:// too
      ],
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const consoleErrors = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    await work(page, consoleErrors);
  } catch (e) {
    console.error(String(e?.stack ?? e));
    process.exitCode = 1;
  } finally {
    clearTimeout(watchdog);
    if (context) await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}
