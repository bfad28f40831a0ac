// The console in a real browser (Debian's Chromium, driven by playwright-core)
// against a real coordinator, agent, nats-server and the vSphere simulator,
// which tests/integration/migration/console_browser_test.cc starts and checks
// afterwards (what was stored, byte-identical volumes). Run by it with:
//   FERRY_CONSOLE_URL   http://127.0.0.1:PORT/console/
//   FERRY_CONSOLE_TOKEN the coordinator's console token
//   FERRY_SIM_URL, FERRY_SIM_THUMBPRINT  the vCenter to add as a provider
//   FERRY_SHOTS         optional: a folder for screenshots of the main pages
//   FERRY_DEBUG_DIR     optional: the page after each step, as a screenshot
// The steps run in order, one browser page, as a user would go.
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const URL = process.env.FERRY_CONSOLE_URL;
const TOKEN = process.env.FERRY_CONSOLE_TOKEN;
const SIM = process.env.FERRY_SIM_URL;
const THUMB = process.env.FERRY_SIM_THUMBPRINT;
const SHOTS = process.env.FERRY_SHOTS || '';
// The page as each step left it, for whoever reads a failure.
const DEBUG = process.env.FERRY_DEBUG_DIR || '';
const origin = new globalThis.URL(URL).origin;

let browser;
let page;

// The API as the test's own client (for setup and for checks the UI cannot show).
async function api(verb, body, token = TOKEN) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${origin}/api/v1/${verb}`, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

async function shot(name) {
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

async function go(label) {
  await page.getByRole('link', { name: label }).click();
  await page.getByRole('heading', { level: 1, name: label }).waitFor();
}

function row(testid) {
  return page.locator(`[data-testid="${testid}"]`).first();
}

async function waitText(locator, re, timeout = 180000) {
  await locator.filter({ hasText: re }).first().waitFor({ timeout });
}

before(async () => {
  assert.ok(URL && TOKEN && SIM && THUMB, 'FERRY_CONSOLE_URL, _TOKEN, FERRY_SIM_URL and _THUMBPRINT are needed');
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    // No sandbox as root; no background traffic to hosts this machine cannot reach.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  // Tall enough that a plan's expanded VM fits a screenshot.
  page = await browser.newPage({ viewport: { width: 1400, height: 1200 } });
  page.setDefaultTimeout(30000);
  page.on('pageerror', (e) => console.error('page error:', e.message));
});

afterEach(async (t) => {
  if (DEBUG && page) await page.screenshot({ path: `${DEBUG}/${t.name.slice(0, 40).replace(/[^a-z0-9]+/gi, '-')}.png` });
});

after(async () => {
  await browser?.close();
});

test('unauthenticated requests are refused, and the console asks for the token', async () => {
  const none = await api('get', { kind: 'plan' }, '');
  assert.equal(none.status, 401);
  const wrong = await api('get', { kind: 'plan' }, 'a'.repeat(64));
  assert.equal(wrong.status, 401);
  const events = await fetch(`${origin}/api/v1/events`);
  assert.equal(events.status, 401);
  // A state-changing call from another origin is refused even with the token.
  const foreign = await fetch(`${origin}/api/v1/apply`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, Origin: 'http://evil.example', 'Content-Type': 'application/json' },
    body: JSON.stringify({ files: [{ name: 'x', text: '{}' }] }),
  });
  assert.equal(foreign.status, 403);

  await page.goto(URL);
  await page.getByRole('heading', { name: 'Sign in to the Ferry console' }).waitFor();
  await page.fill('#token', 'b'.repeat(64));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText("Authorization: the token is not this coordinator's").waitFor();
  await page.fill('#token', TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Providers for virtualization' }).waitFor();
});

test('add a provider: a wrong password is refused naming the field, then the vCenter is added', async () => {
  const add = async (password) => {
    await page.getByRole('button', { name: 'Create provider' }).first().click();
    await page.selectOption('#p-type', 'vsphere');
    await page.fill('#p-name', 'vcenter');
    await page.fill('#p-url', SIM);
    await page.fill('#p-user', 'administrator@vsphere.local');
    await page.fill('#p-password', password);
    await page.fill('#p-thumbprint', THUMB);
    await page.locator('form#add-provider-form').evaluate((f) => f.requestSubmit());
  };
  await add('not-the-password');
  // The coordinator's own message, shown at the field it names.
  await page.locator('#add-provider-form').getByText(/credentials: user\/password: /).waitFor();
  const stored = await api('get', { kind: 'provider' });
  assert.equal(stored.body.items.length, 0, 'nothing is stored after a refusal');
  await page.fill('#p-password', 'ferry-sim-pass');
  await page.locator('form#add-provider-form').evaluate((f) => f.requestSubmit());
  await page.locator('#add-provider-form').waitFor({ state: 'detached' });
  // The destination: this cluster.
  await page.getByRole('button', { name: 'Create provider' }).first().click();
  await page.selectOption('#p-type', 'openshift');
  await page.fill('#p-name', 'host');
  await page.locator('form#add-provider-form').evaluate((f) => f.requestSubmit());
  await page.locator('#add-provider-form').waitFor({ state: 'detached' });
  await waitText(row('provider-vcenter'), /Ready/);
  // The inventory's VM count (the simulator holds the test's VMs).
  await waitText(row('provider-vcenter').locator('[data-testid="vm-count"]'), /^[1-9]/, 30000);
  await shot('providers');
});

test('create a network map and a storage map', async () => {
  await go('Mappings for virtualization');
  await page.getByRole('button', { name: 'Create NetworkMap' }).click();
  await page.fill('#m-name', 'web-net');
  await page.selectOption('#m-source', 'vcenter');
  await page.selectOption('#m-row-source-0', 'VM Network');
  await page.fill('#m-row-target-0', 'pod');
  // The simulator's VMs have a second NIC, on a distributed port group.
  await page.getByRole('button', { name: 'Add mapping' }).click();
  await page.selectOption('#m-row-source-1', 'DC0_DVPG0');
  await page.fill('#m-row-target-1', 'web/vlan-10');
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await row('map-web-net').waitFor();

  await page.getByRole('tab', { name: 'StorageMaps' }).click();
  await page.getByRole('button', { name: 'Create StorageMap' }).click();
  await page.fill('#m-name', 'web-storage');
  await page.selectOption('#m-row-source-0', 'LocalDS_0');
  await page.fill('#m-row-target-0', 'local');
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await row('map-web-storage').waitFor();
  await shot('mappings');
});

async function wizard({ name, vms, filter, warm = false }) {
  await go('Plans for virtualization');
  await page.getByRole('button', { name: 'Create plan' }).click();
  await page.fill('#w-name', name);
  await page.selectOption('#w-source', 'vcenter');
  await page.fill('#w-tns', 'web');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByLabel('Filter virtual machines').fill(filter);
  for (const vm of vms) await row(`vm-${vm}`).locator('input[type=checkbox]').check();
  return async () => {
    await page.getByRole('button', { name: 'Next' }).click();
    await page.selectOption('#w-netmap', 'web-net');
    await page.getByRole('button', { name: 'Next' }).click();
    await page.selectOption('#w-stormap', 'web-storage');
    await page.getByRole('button', { name: 'Next' }).click();
    if (warm) await page.check('#w-warm');
    await page.check('#w-raw');
    await page.getByRole('button', { name: 'Next' }).click(); // Type -> Hooks
    await page.getByRole('button', { name: 'Next' }).click(); // Hooks -> Review
    await page.getByRole('button', { name: 'Create plan' }).click();
    await page.getByRole('heading', { level: 1, name: `Plan ${name}` }).waitFor();
  };
}

test('create a plan through the wizard, filtering the VM list, and run it to Completed', async () => {
  const rest = await wizard({ name: 'web-plan', vms: ['web-01'], filter: 'web' });
  // The filter left only the web VMs.
  const listed = await page.locator('[data-testid="wizard-vms"] tbody tr').allTextContents();
  assert.ok(listed.length >= 1 && listed.every((t) => t.includes('web')), `filtered list: ${listed}`);
  await shot('plan-wizard');
  await rest();
  await page.getByTestId('start').click();
  const vm = row('vm-web-01');
  await waitText(vm.locator('[data-testid="phase"]'), /Succeeded/);
  // The data copied is the disk's size (32 MiB).
  await waitText(vm.locator('[data-testid="copied"]'), /32\.0 MiB of 32\.0 MiB/, 10000);
  await waitText(page.getByTestId('summary-data-copied'), /32\.0 MiB of 32\.0 MiB/, 10000);
  await vm.getByRole('button', { name: /details|expand/i }).first().click().catch(async () => {
    await vm.locator('td button').first().click();
  });
  await page.getByTestId('steps-web-01').waitFor();
  await shot('plan-details');
});

test('cancel one VM of a two-VM plan', async () => {
  const rest = await wizard({ name: 'two-plan', vms: ['two-01', 'two-02'], filter: 'two' });
  await rest();
  await page.getByTestId('start').click();
  const slow = row('vm-two-02');
  // two-02 holds more data; cancel it while its disk is being copied.
  await waitText(slow.locator('[data-testid="phase"]'), /CopyDisks/, 60000);
  await slow.locator('input[type=checkbox]').check();
  await page.getByTestId('cancel').click();
  await waitText(slow.locator('[data-testid="phase"]'), /Canceled/);
  await waitText(row('vm-two-01').locator('[data-testid="phase"]'), /Succeeded/);
});

test("a warm plan's Cutover button", async () => {
  const rest = await wizard({ name: 'warm-plan', vms: ['warm-01'], filter: 'warm', warm: true });
  await rest();
  await page.getByTestId('start').click();
  // The initial copy runs, then the VM waits for its next precopy or the cutover.
  const vm = row('vm-warm-01');
  await page.getByTestId('cutover').waitFor();
  await waitText(vm.locator('[data-testid="phase"]'), /CopyingPaused/, 120000);
  await page.getByTestId('cutover').click();
  await page.getByRole('button', { name: 'Set cutover' }).click();
  await waitText(vm.locator('[data-testid="phase"]'), /Succeeded/);
  await vm.locator('td button').first().click();
  await page.getByTestId('precopy-chart').waitFor();
  await shot('warm-plan');
});

test('an invalid plan shows its Critical conditions and no Start button', async () => {
  // A plan that was valid when stored; then its network map stops mapping
  // the VM's network (a change to the map is allowed; the plan's conditions
  // are computed against it).
  const put = (docs) => api('apply', { files: [{ name: 'setup', text: docs.map((d) => JSON.stringify(d)).join('\n---\n') }] });
  const map = (entries) => ({
    apiVersion: 'forklift.konveyor.io/v1beta1',
    kind: 'NetworkMap',
    metadata: { name: 'bad-net', namespace: 'openshift-mtv' },
    spec: { provider: { source: { name: 'vcenter' }, destination: { name: 'host' } }, map: entries },
  });
  const pod = { source: { name: 'VM Network' }, destination: { type: 'pod' } };
  const vlan = { source: { name: 'DC0_DVPG0' }, destination: { type: 'multus', namespace: 'web', name: 'vlan-10' } };
  let a = await put([map([pod, vlan])]);
  assert.equal(a.status, 200, JSON.stringify(a.body));
  a = await put([
    {
      apiVersion: 'forklift.konveyor.io/v1beta1',
      kind: 'Plan',
      metadata: { name: 'bad-plan', namespace: 'openshift-mtv' },
      spec: {
        provider: { source: { name: 'vcenter' }, destination: { name: 'host' } },
        map: { network: { name: 'bad-net' }, storage: { name: 'web-storage' } },
        targetNamespace: 'web',
        skipGuestConversion: true,
        vms: [{ name: 'web-01' }],
      },
    },
  ]);
  assert.equal(a.status, 200, JSON.stringify(a.body));
  a = await put([map([pod])]);
  assert.equal(a.status, 200, JSON.stringify(a.body));
  await go('Plans for virtualization');
  await page.getByRole('button', { name: 'bad-plan' }).click();
  await page.getByRole('heading', { level: 1, name: 'Plan bad-plan' }).waitFor();
  await page.getByTestId('critical').first().waitFor();
  const critical = await page.getByTestId('critical').allTextContents();
  assert.ok(critical.some((t) => t.includes('VMNetworksNotMapped')), critical.join(' | '));
  assert.equal(await page.getByTestId('start').count(), 0, 'no Start button');
  await shot('invalid-plan');
});

test('the inventory browser searches VMs', async () => {
  await go('Inventory');
  await page.getByLabel('Search VMs').fill('two');
  const rows = page.locator('[data-testid="inventory-vms"] tbody tr');
  await waitText(rows.first(), /two-0/, 30000);
  const names = await rows.allTextContents();
  assert.equal(names.length, 2, names.join(' | '));
  await shot('inventory');
});
