// Drives Debian's headless chromium (through playwright-core, no browser download) through the
// password reset page, as a person would: open the link, look at the form, type the new password
// twice, submit, look at the result. Used by tests/e2e/password_reset.rs.
//
//   node tests/web/reset.mjs --url URL --password PW --form-shot FILE --result-shot FILE
//        [--confirm PW2]
//
// Prints one JSON line: { formStatus, formTitle, background, resultStatus, resultHeading,
// resultText, consoleErrors }. Exits 1 on any error and 2 when it takes longer than 60 s.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => {
    if (a.startsWith('--')) pairs.push([a.slice(2), all[i + 1]]);
    return pairs;
  }, []),
);
for (const required of ['url', 'password', 'form-shot', 'result-shot']) {
  if (!args[required]) {
    console.error(`missing --${required}`);
    process.exit(1);
  }
}

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
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleErrors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });

  const form = await page.goto(args.url, { waitUntil: 'load' });
  const formTitle = await page.title();
  // The inline style sheet is allowed by its CSP hash: if it were blocked, the page would be white.
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.fill('#password', args.password);
  await page.fill('#confirm', args.confirm ?? args.password);
  await page.screenshot({ path: args['form-shot'], fullPage: true });

  const [result] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    page.click('button[type=submit]'),
  ]);
  await page.screenshot({ path: args['result-shot'], fullPage: true });
  const resultHeading = await page.textContent('h1');
  const resultText = await page.textContent('main');

  console.log(
    JSON.stringify({
      formStatus: form?.status() ?? 0,
      formTitle,
      background,
      resultStatus: result?.status() ?? 0,
      resultHeading,
      resultText,
      consoleErrors,
    }),
  );
  await context.close();
  context = undefined;
} catch (e) {
  console.error(String(e?.stack ?? e));
  process.exitCode = 1;
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  clearTimeout(watchdog);
}
