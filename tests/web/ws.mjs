// Drives Debian's headless chromium (playwright-core, no browser download) through
// tests/web/ws/index.html, a web client on xmpp.js's browser build over WSS. Used by
// tests/e2e/websocket.rs, which serves the page and runs the TCP client at the other end.
//
//   node tests/web/ws.mjs --url URL --password PW --shot FILE [--refused-url URL]
//
// 1. URL#password=PW: SCRAM through SASL2 asking for a FAST token, kept in localStorage;
// 2. a reload of URL (no password anywhere): the token alone; the page sends the peer a message
//    and waits for the answer; the screenshot is taken then;
// 3. --refused-url (the same page from an origin the server does not allow): must not connect.
//
// Prints one JSON line: { first, second, received, storedToken, refused, consoleErrors }.
// Exits 1 on any error and 2 when it takes longer than 60 s.
import { parseArgs, withBrowser } from './browser.mjs';

const args = parseArgs(['url', 'password', 'shot']);
let page;

// Waits until the page's state is `online` with `n` logins, or fails with what the page says.
async function online(n) {
  await page.waitForFunction(
    (n) => window.tessera && (window.tessera.logins.length >= n || window.tessera.error),
    n,
    { timeout: 20_000 },
  );
  const t = await page.evaluate(() => window.tessera);
  if (t.error) throw new Error(`page error: ${t.error}\n${await page.textContent('#log')}`);
  return t.logins[n - 1];
}

await withBrowser(async (p, consoleErrors) => {
  page = p;
  await page.goto(`${args.url}#password=${encodeURIComponent(args.password)}`, { waitUntil: 'load' });
  const first = await online(1);
  // xmpp.js saves the token from <success> on its own schedule: wait for it to be kept.
  await page.waitForFunction(() => localStorage.getItem('fast-token'), null, { timeout: 20_000 });
  const addressAfterLogin = page.url();

  await page.reload({ waitUntil: 'load' });
  const second = await online(1);
  await page.waitForFunction(() => window.tessera.received, null, { timeout: 20_000 });
  const received = await page.evaluate(() => window.tessera.received);
  const storedToken = await page.evaluate(() => JSON.parse(localStorage.getItem('fast-token')));
  await page.screenshot({ path: args.shot, fullPage: true });

  let refused = null;
  if (args['refused-url']) {
    await page.goto(`${args['refused-url']}#password=${encodeURIComponent(args.password)}`, {
      waitUntil: 'load',
    });
    await page.waitForFunction(() => window.tessera && (window.tessera.error || window.tessera.logins.length), null, {
      timeout: 20_000,
    });
    refused = await page.evaluate(() => ({ error: window.tessera.error, logins: window.tessera.logins.length }));
  }

  console.log(
    JSON.stringify({
      first,
      addressAfterLogin,
      second,
      received,
      storedToken,
      refused,
      // The refused origin's failed handshake is logged by the browser: not an error of ours.
      consoleErrors: consoleErrors.filter((e) => !e.includes('WebSocket connection')),
    }),
  );
});
