// The admin console in headless Chromium (the system's: Debian's `chromium`), driven by
// Playwright's client library against a live server that tests/api/console.rs started.
// Every step waits on what the page shows, with generous bounds; nothing waits on a clock.
//
// Environment (set by tests/api/console.rs): CONSOLE_URL, CONSOLE_CHROMIUM,
// CONSOLE_OPS_PASSWORD (the temporary password of the admin-account user `ops`),
// CONSOLE_PLUGIN (a component to upload), CONSOLE_SCREENSHOTS (a folder), CONSOLE_AXE
// (the vendored axe-core).

import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import assert from 'node:assert/strict';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run through cargo test --test api console)`);
  return v;
};
const BASE = env('CONSOLE_URL');
const UI = `${BASE}/ui/`;
const SHOTS = env('CONSOLE_SCREENSHOTS');
const AXE = readFileSync(env('CONSOLE_AXE'), 'utf8');
const OPS_TEMPORARY = env('CONSOLE_OPS_PASSWORD');
const OPS_PASSWORD = 'ops chose this passphrase';
const ALICE_TEMPORARY = 'alice temporary 1';
const ALICE_PASSWORD = 'alice chose this passphrase';
const PATIENCE = 120_000;

const browser = await chromium.launch({
  executablePath: env('CONSOLE_CHROMIUM'),
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-extensions', '--no-first-run'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
context.setDefaultTimeout(PATIENCE);
const page = await context.newPage();
const problems = [];
page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
page.on('console', (m) => {
  if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
});

const started = Date.now();
const scanned = [];
async function step(name, body) {
  const t = Date.now();
  process.stdout.write(`- ${name} … `);
  await body();
  console.log(`ok (${Date.now() - t} ms)`);
}

const h1 = (name) => page.getByRole('heading', { level: 1, name, exact: true });
async function open(fragment, title) {
  await page.goto(`${UI}${fragment}`);
  await h1(title).waitFor();
}
const status = () => page.locator('#status');
async function saw(text) {
  await page.locator('#status', { hasText: text }).waitFor();
}

// axe-core on the page as it is (evaluated over the DevTools protocol, which the page's
// CSP does not govern); no serious or critical violation allowed. Also: no inline script,
// no style attribute.
async function scan(name) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`), [], `axe on ${name}`);
  const inline = await page.evaluate(() => ({
    scripts: document.querySelectorAll('script:not([src])').length,
    styled: document.querySelectorAll('[style]').length,
    styles: document.querySelectorAll('style').length,
  }));
  assert.deepEqual(inline, { scripts: 0, styled: 0, styles: 0 }, `inline script or style on ${name}`);
  scanned.push(name);
}
const shot = (name) => page.screenshot({ path: join(SHOTS, `${name}.png`) });

async function signIn(username, password) {
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}
async function changeTemporary(newPassword) {
  await page.getByLabel('New password', { exact: true }).waitFor();
  await page.getByLabel('New password', { exact: true }).fill(newPassword);
  await page.getByLabel('New password again', { exact: true }).fill(newPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
}
async function signOut() {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await h1('Sign in').waitFor();
}
async function confirm(label) {
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await dialog.getByRole('button', { name: label, exact: true }).click();
}
const apiAs = (key, path) => fetch(`${BASE}${path}`, { headers: { authorization: `Bearer ${key}` } });

await step('/ redirects to the sign-in page', async () => {
  await page.goto(`${BASE}/`);
  await h1('Sign in').waitFor();
  assert.equal(new URL(page.url()).pathname, '/ui/');
  await scan('sign in');
  await shot('sign-in');
});

await step('keyboard only: sign in with the temporary password, forced change', async () => {
  for (let i = 0; i < 40; i += 1) {
    if (await page.evaluate(() => document.activeElement && document.activeElement.name === 'username')) break;
    await page.keyboard.press('Tab');
  }
  const focus = await page.evaluate(() => {
    const el = document.activeElement;
    const style = getComputedStyle(el);
    return { name: el.name, outline: style.outlineStyle, width: style.outlineWidth };
  });
  assert.equal(focus.name, 'username', 'Tab reaches the username field');
  assert.notEqual(focus.outline, 'none', 'the focused field shows its focus');
  await page.keyboard.type('ops');
  await page.keyboard.press('Tab');
  await page.keyboard.type(OPS_TEMPORARY);
  await page.keyboard.press('Enter');
  await page.getByLabel('New password', { exact: true }).waitFor();
  await saw('temporary');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'new_password', 'focus moves to the new password');
  await page.keyboard.type(OPS_PASSWORD);
  await page.keyboard.press('Tab');
  await page.keyboard.type(OPS_PASSWORD);
  await page.keyboard.press('Enter');
  await h1('Overview').waitFor();
  await saw('Password changed');
  await page.getByText('ops (admin)').waitFor();
  await scan('overview');
  await shot('overview');
});

await step('create an account', async () => {
  await open('#/accounts', 'Accounts');
  await page.getByLabel('Name', { exact: true }).fill('acme');
  await page.getByLabel('Email (optional)').fill('it@acme.example');
  await page.getByRole('button', { name: 'Create account' }).click();
  await saw('Account acme created.');
  await page.getByRole('link', { name: 'acme', exact: true }).waitFor();
  await scan('accounts');
  await shot('accounts');
});

await step('create a user with a temporary password', async () => {
  await open('#/accounts/acme', 'Account acme');
  await page.getByLabel('Username', { exact: true }).fill('alice');
  await page.getByLabel('Password (optional)').fill(ALICE_TEMPORARY);
  await page.getByLabel('Roles (optional)').fill('acme:read:*');
  assert.equal(await page.getByLabel('Temporary password: the user must change it at first sign-in').isChecked(), true);
  await page.getByRole('button', { name: 'Create user' }).click();
  await saw('User alice created in acme');
  await page.getByRole('link', { name: 'alice', exact: true }).waitFor();
  await scan('account');
});

await step('that user signs in, changes the password, and meets refusals as messages', async () => {
  await signOut();
  await saw('Signed out.');
  await signIn('alice', ALICE_TEMPORARY);
  await changeTemporary(ALICE_PASSWORD);
  await h1('Overview').waitFor();
  await page.getByText('alice (acme)').waitFor();
  await open('#/plugins', 'Plugins and policies');
  await page.getByText(/^Not allowed: .*plugins\.(list|read)/).first().waitFor();
  await open('#/audit', 'Audit log');
  await page.getByText(/^Not allowed: .*audit\.read/).waitFor();
  await scan('refusals');
  await signOut();
  await signIn('ops', OPS_PASSWORD);
  await h1('Overview').waitFor();
});

let key;
await step('create a key (shown once, copy button), the key works, revoke it, the key gets 401', async () => {
  await open('#/users', 'Users');
  await page.getByLabel('Name or email contains').fill('ali');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForURL(/q=ali/);
  await page.getByRole('link', { name: 'alice', exact: true }).waitFor();
  await scan('users');
  await shot('users');
  await page.getByRole('link', { name: 'alice', exact: true }).click();
  await h1('User alice').waitFor();
  await page.getByLabel('Name', { exact: true }).fill('ci');
  await page.getByRole('button', { name: 'Create key' }).click();
  await saw('Key ci created');
  await page.getByRole('button', { name: 'Copy' }).waitFor();
  key = await page.getByLabel('Secret').inputValue();
  assert.match(key, /^\S{20,}$/);
  assert.equal((await apiAs(key, '/v1/whoami')).status, 200, 'the new key works');
  await scan('user');
  await shot('user');
  await page.getByRole('button', { name: /^Revoke key ci / }).click();
  await confirm('Revoke key');
  await saw('Key ci revoked.');
  assert.equal((await apiAs(key, '/v1/whoami')).status, 401, 'the revoked key is refused');
  assert.equal(await page.getByLabel('Secret').count(), 0, 'the secret is gone from the page');
});

await step('upload a plugin with progress, activate it in shadow mode, see a disagreement', async () => {
  await open('#/plugins', 'Plugins and policies');
  await page.getByLabel('Component (.wasm)').setInputFiles(env('CONSOLE_PLUGIN'));
  await page.getByLabel('Name (optional)').fill('hostile');
  await page.getByRole('button', { name: 'Upload' }).click();
  await page.locator('#status', { hasText: 'Plugin hostile stored' }).waitFor({ timeout: 300_000 });
  await page.getByRole('button', { name: 'Activate hostile' }).first().click();
  const activation = page.getByRole('form', { name: 'Activate hostile' });
  await activation.getByLabel('Settings (JSON object)').fill('{"mode": "allow", "deny_actions": ["accounts.read"]}');
  await activation.getByRole('button', { name: 'Activate', exact: true }).click();
  await saw('runs in shadow mode');
  // Reading an account is what the shadow would deny: the active plugin still allows it.
  await open('#/accounts/acme', 'Account acme');
  await page.getByText('it@acme.example').waitFor();
  const deadline = Date.now() + PATIENCE;
  for (;;) {
    await open('#/plugins', 'Plugins and policies');
    if (await page.getByRole('cell', { name: 'accounts.read' }).count()) break;
    assert.ok(Date.now() < deadline, 'a shadow disagreement on accounts.read within the bound');
    await page.waitForTimeout(500);
  }
  await page.getByText(/[1-9]\d* disagreements with the active plugin/).waitFor();
  await scan('plugins');
  await shot('plugins');
  // Swap: hostile decides, builtin:native runs in its shadow; swap again: back.
  const facts = (term) => page.locator('dt', { hasText: term }).locator('xpath=following-sibling::dd[1]');
  await page.getByRole('button', { name: /^Swap: make hostile active/ }).click();
  await confirm('Swap');
  await saw('hostile is now the active plugin; builtin:native runs in its shadow');
  await facts('Active').filter({ hasText: 'hostile' }).waitFor();
  await facts('Shadow').filter({ hasText: 'builtin:native' }).waitFor();
  await page.getByRole('button', { name: /^Swap: make builtin:native active, keep hostile in shadow/ }).click();
  await confirm('Swap');
  await saw('builtin:native is now the active plugin; hostile runs in its shadow');
  await facts('Active').filter({ hasText: 'builtin:native' }).waitFor();
});

await step('decision and audit logs: filters, live tail', async () => {
  await open('#/decisions', 'Decisions');
  await page.getByRole('cell', { name: 'ops (admin)' }).first().waitFor();
  await page.getByLabel('Action', { exact: true }).fill('accounts.read');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForURL(/action=accounts.read/);
  await page.getByRole('cell', { name: 'accounts.read' }).first().waitFor();
  await scan('decisions');
  await shot('decisions');
  await open('#/audit', 'Audit log');
  await page.getByRole('cell', { name: 'accounts.create' }).first().waitFor();
  await page.getByLabel('Live: show new entries as they come').check();
  await scan('audit');
  await shot('audit');
  await page.getByLabel('Live: show new entries as they come').uncheck();
});

await step('access tokens page', async () => {
  await open('#/tokens', 'Access tokens');
  await page.getByText('No request is waiting.').waitFor();
  await scan('tokens');
});

await step('import a CSV with one bad row: the row report, nothing written', async () => {
  await open('#/csv', 'Export and import users (CSV)');
  await page.getByLabel('CSV file').setInputFiles({
    name: 'users.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from('username,email,account,roles\nbob,bob@acme.example,acme,\nBad Name!,,acme,\n'),
  });
  await page.getByRole('button', { name: 'Import' }).click();
  await page.getByRole('heading', { name: 'Nothing imported: fix these rows' }).waitFor();
  await page.getByRole('row', { name: /^3 / }).waitFor();
  await page.locator('#alert', { hasText: '1 row(s) refused; nothing was written.' }).waitFor();
  await scan('csv');
  await shot('csv');
  await open('#/users?q=bob', 'Users');
  await page.getByText('No users match.').waitFor();
});

await step('delete an enabled account: told to disable first; disable, then delete', async () => {
  await open('#/accounts', 'Accounts');
  await page.getByRole('button', { name: 'Delete account acme' }).click();
  await page.locator('#alert', { hasText: 'Disable acme first' }).waitFor();
  await page.getByRole('button', { name: 'Disable account acme' }).click();
  await confirm('Disable');
  await saw('Account acme disabled.');
  await page.getByRole('button', { name: 'Delete account acme' }).click();
  await confirm('Delete account');
  await saw('Account acme is being deleted.');
  await scan('accounts after delete');
});

await step('a phone-width screen: nothing wider than the screen', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await open('#/users', 'Users');
  const widths = await page.evaluate(() => ({ page: document.documentElement.scrollWidth, screen: window.innerWidth }));
  assert.ok(widths.page <= widths.screen + 1, `page ${widths.page}px on a ${widths.screen}px screen`);
  await page.getByRole('link', { name: 'Plugins and policies' }).waitFor();
  await scan('users on a phone');
  await shot('phone-users');
  await page.setViewportSize({ width: 1280, height: 800 });
});

await step('another site cannot use the session: a cross-site fetch and form post are refused', async () => {
  const evil = await context.newPage();
  const html = `<!doctype html><html><head><title>evil</title></head><body>
<form id="f" method="POST" action="${BASE}/v1/users/import?on_conflict=update" enctype="text/plain">
<input type="hidden" name="username,email,account,roles&#10;mallory,,admin," value="">
</form>
<script>
fetch(${JSON.stringify(`${BASE}/v1/accounts`)}, { method: 'POST', credentials: 'include', mode: 'no-cors',
  headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ name: 'evil' }) })
  .catch(() => {}).finally(() => document.getElementById('f').submit());
</script></body></html>`;
  // Another site on this machine: `localhost` is a different site from `127.0.0.1` (a page
  // on a public name could not reach a loopback server at all in today's Chromium).
  const evilServer = createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end(html); });
  await new Promise((resolve) => evilServer.listen(0, '127.0.0.1', resolve));
  const evilUrl = `http://localhost:${evilServer.address().port}/`;
  const fetched = evil.waitForResponse((r) => r.url() === `${BASE}/v1/accounts` && r.request().method() === 'POST');
  const posted = evil.waitForResponse((r) => r.url().startsWith(`${BASE}/v1/users/import`));
  await evil.goto(evilUrl);
  for (const [what, response] of [['fetch', await fetched], ['form post', await posted]]) {
    assert.ok([401, 403].includes(response.status()), `the cross-site ${what} got ${response.status()}`);
  }
  await evil.close();
  evilServer.close();
  // The console itself is still signed in.
  await open('#/', 'Overview');
});

await step('sign out revokes the session', async () => {
  await signOut();
  await page.goto(`${UI}#/accounts`);
  await h1('Sign in').waitFor();
});

assert.deepEqual(problems, [], 'no script error and no CSP violation on any page');
await browser.close();
console.log(`console browser test passed: ${scanned.length} page states scanned by axe (${scanned.join(', ')}), ${Math.round((Date.now() - started) / 1000)} s`);
