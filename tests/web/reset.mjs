// Drives Debian's headless chromium (through playwright-core, no browser download) through the
// password reset page, as a person would: open the link, look at the form, type the new password
// twice, submit, look at the result. Used by tests/e2e/password_reset.rs.
//
//   node tests/web/reset.mjs --url URL --password PW --form-shot FILE --result-shot FILE
//        [--confirm PW2]
//
// Prints one JSON line: { formStatus, formTitle, background, resultStatus, resultHeading,
// resultText, consoleErrors }. Exits 1 on any error and 2 when it takes longer than 60 s.
import { parseArgs, withBrowser } from './browser.mjs';

const args = parseArgs(['url', 'password', 'form-shot', 'result-shot']);

await withBrowser(async (page, consoleErrors) => {
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
});
