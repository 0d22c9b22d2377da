// Browser tests of the web page (issue 9): a demo district, a real fieldsyncd over HTTPS, Debian's
// chromium driven by playwright-core, simulated tablets (`fieldsync tablet`), axe-core on every
// page. Screenshots of every page go to --artifacts.
//
//   node tests/web/run.mjs --fieldsync build/bin/fieldsync --fieldsyncd build/bin/fieldsyncd \
//        [--artifacts build/web-artifacts] [--chromium /usr/bin/chromium] [--keep]
//
// Waits are on conditions (selectors, files, processes), never fixed sleeps; timeouts are
// generous so that an ASan build on a busy 2-core machine passes too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

// ---- arguments and preconditions (missing tools fail loudly, never skip) ----

function arg(name, fallback) {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const opts = {
    fieldsync: arg('fieldsync', process.env.FIELDSYNC_BIN ?? path.join(here, '../../build/bin/fieldsync')),
    fieldsyncd: arg('fieldsyncd', process.env.FIELDSYNCD_BIN ?? path.join(here, '../../build/bin/fieldsyncd')),
    artifacts: arg('artifacts', process.env.FIELDSYNC_WEB_ARTIFACTS ?? path.join(here, '../../build/web-artifacts')),
    chromium: arg('chromium', process.env.FIELDSYNC_CHROMIUM ?? '/usr/bin/chromium'),
    keep: process.argv.includes('--keep'),
};

function die(msg) {
    console.error(`web tests: ${msg}`);
    process.exit(1);
}
const nodeMajor = Number(process.versions.node.split('.')[0]);
if (nodeMajor < 20) die(`Node.js 20 or newer is needed (playwright-core), this is ${process.version}`);
for (const [what, p] of [
    ['fieldsync', opts.fieldsync],
    ['fieldsyncd', opts.fieldsyncd],
]) {
    if (!fs.existsSync(p)) die(`${what} not found at ${p} (build it, or pass --${what})`);
}
if (!fs.existsSync(opts.chromium))
    die(`chromium not found at ${opts.chromium}: install Debian's package (apt-get install chromium; tools/test does)`);
let chromium;
let axeSource;
try {
    ({ chromium } = await import('playwright-core'));
    axeSource = fs.readFileSync(path.join(here, 'node_modules/axe-core/axe.min.js'), 'utf8');
} catch (e) {
    die(`playwright-core/axe-core are not installed: run \`npm ci --no-audit --no-fund\` in tests/web (tools/test does) — ${e.message}`);
}

const T = {
    short: 60_000, // one UI step (a click and its answer) — generous for ASan
    server: 120_000, // server start, demo creation
};

// ---- helpers ----

const verbose = !!process.env.FIELDSYNC_WEB_VERBOSE;

function run(file, args, { allowFail = false, timeout = T.server } = {}) {
    const started = Date.now();
    return new Promise((resolve, reject) => {
        execFile(file, args, { timeout, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
            const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
            if (verbose) console.error(`# ${Date.now() - started} ms (exit ${code}): ${path.basename(file)} ${args.join(' ')}`);
            if (err && !allowFail)
                reject(new Error(`${path.basename(file)} ${args.join(' ')} failed (${code}):\n${stdout}\n${stderr}`));
            else resolve({ code, stdout, stderr });
        });
    });
}

async function waitFor(what, check, timeout = T.server) {
    const end = Date.now() + timeout;
    for (;;) {
        const v = await check();
        if (v) return v;
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
    }
}

const env = {};
let server; // the fieldsyncd child
let serverOut = '';
let browser;

function fs_(...args) {
    return run(opts.fieldsync, args);
}

async function enrolmentCode(username) {
    const { stdout } = await fs_('tablets', 'code', '--data', env.data, '--username', username, '--no-qr');
    const m = /enrolment code for [^:]+: (\S+)/.exec(stdout);
    assert.ok(m, `no code in: ${stdout}`);
    return m[1];
}

// A simulated tablet in its own state folder.
class Tablet {
    constructor(name) {
        this.dir = path.join(env.tmp, name);
        this.name = name;
    }
    cmd(args, o) {
        return run(opts.fieldsync, ['tablet', '--state', this.dir, ...args], o);
    }
    async enrol(code) {
        const { stdout } = await this.cmd(['enrol', '--server', env.url, '--code', code, '--pin', env.pin, '--label', this.name]);
        this.device = /enrolled (\S+)/.exec(stdout)?.[1];
        assert.ok(this.device, stdout);
    }
    sync(o) {
        return this.cmd(['sync'], o);
    }
    // [{id, collection, status, rest, fields}]
    async list(collection) {
        const { stdout } = await this.cmd(['list', ...(collection ? ['--collection', collection] : [])]);
        const out = [];
        for (const line of stdout.split('\n')) {
            const m = /^([0-9a-f-]{36})\s+(\S+)\s+(\S+)(.*)$/.exec(line);
            if (m) out.push({ id: m[1], collection: m[2], status: m[3], rest: m[4].trim(), fields: null, text: line });
            else if (out.length && line.trim()) {
                const last = out[out.length - 1];
                last.text += `\n${line}`;
                const t = line.trim();
                if (t.startsWith('{') && !last.fields) {
                    try {
                        last.fields = JSON.parse(t);
                    } catch {
                        // not the fields line
                    }
                }
            }
        }
        return out;
    }
}

// axe-core in the page (evaluated through the DevTools protocol, so the page's CSP stays on).
async function checkA11y(page, name) {
    await page.evaluate(axeSource);
    const res = await page.evaluate(async () => {
        // eslint-disable-next-line no-undef
        const r = await axe.run(document, { resultTypes: ['violations'] });
        return r.violations.map((v) => ({
            id: v.id,
            impact: v.impact,
            help: v.help,
            nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
        }));
    });
    const bad = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    fs.writeFileSync(path.join(opts.artifacts, `${name}.axe.json`), JSON.stringify(res, null, 2));
    assert.deepEqual(bad, [], `axe-core: serious/critical violations on ${name}:\n${JSON.stringify(bad, null, 2)}`);
}

async function shot(page, name) {
    await page.screenshot({ path: path.join(opts.artifacts, `${name}.png`), fullPage: true });
}

// Checks a page: no CSP violation or script error so far, axe-core clean, screenshot saved.
async function checkPage(page, name) {
    assert.deepEqual(page.problems, [], `console problems on ${name}`);
    await checkA11y(page, name);
    await shot(page, name);
}

async function newPage({ locale = 'zh-CN' } = {}) {
    const context = await browser.newContext({
        ignoreHTTPSErrors: true,
        acceptDownloads: true,
        locale,
        timezoneId: 'Asia/Shanghai',
        viewport: { width: 1280, height: 900 },
    });
    const page = await context.newPage();
    page.setDefaultTimeout(T.short);
    page.problems = [];
    page.on('console', (m) => {
        const text = m.text();
        // 401 of GET /v1/session before login and deliberate aborts are expected; CSP and
        // script errors are not.
        if (/Content Security Policy|Refused to/i.test(text)) page.problems.push(text);
    });
    page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
    return page;
}

async function login(page, username, password) {
    await page.goto(`${env.url}/`);
    await page.getByLabel('用户名').fill(username);
    await page.getByLabel('密码').fill(password);
    await page.getByRole('button', { name: '登录' }).click();
    await page.locator('nav#nav:not([hidden])').waitFor();
}

const h1 = (page) => page.locator('main h1');

// ---- setup ----

before(async () => {
    fs.mkdirSync(opts.artifacts, { recursive: true });
    for (const f of fs.readdirSync(opts.artifacts)) if (/\.(png|json|csv|log)$/.test(f)) fs.rmSync(path.join(opts.artifacts, f));
    env.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldsync-web-'));
    env.data = path.join(env.tmp, 'data');
    await run(opts.fieldsync, ['demo', '--data', env.data], { timeout: 600_000 });
    env.demo = JSON.parse(fs.readFileSync(path.join(env.data, 'demo.json'), 'utf8'));
    const code = env.demo.enrolment_codes[0];
    env.township = code.township;
    env.worker = code.username;
    env.head = env.demo.users.find((u) => u.role === 'township_head' && u.township === env.township);
    env.admin = env.demo.users.find((u) => u.role === 'district_admin');
    assert.ok(env.head && env.admin, 'demo.json has a head and an admin');

    const portFile = path.join(env.tmp, 'port');
    const log = fs.createWriteStream(path.join(opts.artifacts, 'fieldsyncd.log'));
    server = spawn(opts.fieldsyncd, ['--data', env.data, '--listen', '127.0.0.1:0', '--port-file', portFile], {
        stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout.on('data', (d) => {
        serverOut += d;
        log.write(d);
    });
    server.stderr.on('data', (d) => log.write(d));
    server.on('exit', (code, sig) => {
        serverOut += `\n[fieldsyncd exited ${code ?? sig}]`;
    });
    await waitFor('fieldsyncd to listen', () => {
        if (server.exitCode !== null) throw new Error(`fieldsyncd exited:\n${serverOut}`);
        return /SHA-256 fingerprint: (\S+)/.test(serverOut) && fs.existsSync(portFile) && fs.readFileSync(portFile, 'utf8').trim();
    });
    env.port = fs.readFileSync(portFile, 'utf8').trim();
    env.url = `https://127.0.0.1:${env.port}`;
    env.pin = /SHA-256 fingerprint: (\S+)/.exec(serverOut)[1];

    browser = await chromium.launch({
        executablePath: opts.chromium,
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
        timeout: T.server,
    });
});

after(async () => {
    await browser?.close().catch(() => {});
    if (server && server.exitCode === null) {
        server.kill('SIGTERM');
        await waitFor('fieldsyncd to stop', () => server.exitCode !== null, 30_000).catch(() => server.kill('SIGKILL'));
    }
    if (env.tmp && !opts.keep) fs.rmSync(env.tmp, { recursive: true, force: true });
});

// ---- scenarios (in order: they share the district) ----

const tabletA = () => env.tabletA;
const tabletB = () => env.tabletB;

test('two tablets of one township edit the same household: an open conflict', async () => {
    env.tabletA = new Tablet('tablet-a');
    env.tabletB = new Tablet('tablet-b');
    await tabletA().enrol(await enrolmentCode(env.worker));
    await tabletB().enrol(await enrolmentCode(env.worker));
    await tabletA().sync();
    await tabletB().sync();
    const households = await tabletA().list('household');
    assert.ok(households.length > 0, 'the tablet pulled households');
    const hh = households.find((r) => r.fields && r.fields.members < 20) ?? households[0];
    env.household = hh.id;
    await tabletA().cmd(['edit', hh.id, '--field', 'members=21']);
    await tabletB().cmd(['edit', hh.id, '--field', 'members=22']);
    await tabletA().sync();
    await tabletB().sync();
    // the page shows it (next tests); the tablets keep syncing meanwhile
    const a = (await tabletA().list('household')).find((r) => r.id === hh.id);
    assert.ok(a, 'tablet A still has the household');
});

test('township head: keyboard-only login, month overview', async () => {
    const page = await newPage();
    env.headPage = page;
    await page.goto(`${env.url}/`);
    await page.locator('#login-title').waitFor();
    await checkPage(page, '01-login');
    // the username field has focus; type, Tab, type, Enter — no mouse
    await page.waitForFunction(() => document.activeElement?.name === 'username');
    await page.keyboard.type(env.head.username);
    await page.keyboard.press('Tab');
    await page.keyboard.type(env.head.password);
    await page.keyboard.press('Enter');
    await page.locator('nav#nav:not([hidden])').waitFor();
    await page.locator('.cards').waitFor();
    const title = await h1(page).textContent();
    assert.match(title, /\d{4}年\d{1,2}月概况/, title);
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    // the key figures and the four ones table are there, with the conflict we made
    const cards = await page.locator('.cards .card').allTextContents();
    assert.ok(cards.some((c) => c.includes('未解决冲突') && /[1-9]/.test(c)), cards.join(' | '));
    assert.ok(await page.locator('table tfoot tr.total').count() === 1);
    await checkPage(page, '02-head-overview');
    // keyboard: Tab to the navigation link "记录" and follow it
    for (let i = 0; i < 30; i++) {
        await page.keyboard.press('Tab');
        const txt = await page.evaluate(() => (document.activeElement?.tagName === 'A' ? document.activeElement.textContent : ''));
        if (txt === '记录') break;
    }
    await page.keyboard.press('Enter');
    await page.locator('main h1', { hasText: '记录' }).waitFor();
    assert.equal(await page.locator('main table tbody tr').count(), 50);
    await checkPage(page, '03-head-records');
    // paging: the next 50, and back
    await page.getByRole('link', { name: '下一页' }).click();
    await page.locator('p.count', { hasText: '显示第 51–' }).waitFor();
    await page.getByRole('link', { name: '上一页' }).click();
    await page.locator('p.count', { hasText: '显示第 1–50 条' }).waitFor();
});

test('township head: records search and a record with its history; reveal is explicit', async () => {
    const page = env.headPage;
    const persons = (await tabletA().list('person')).filter((p) => p.fields?.name);
    assert.ok(persons.length > 0);
    const person = persons[0];
    env.person = person;
    await page.getByLabel('类型').selectOption('person');
    await page.getByLabel('搜索').fill(person.fields.name);
    await page.getByRole('button', { name: '查询' }).click();
    const link = page.locator(`a[href="#/record/${person.id}"]`);
    await link.waitFor();
    await link.click();
    await page.locator('main h1', { hasText: '残疾人记录' }).waitFor();
    await page.locator('ol.history > li').first().waitFor();
    // enumerations are shown by what they are called, not by their codes
    const categories = { visual: '视力残疾', hearing: '听力残疾', speech: '言语残疾', physical: '肢体残疾', intellectual: '智力残疾', mental: '精神残疾', multiple: '多重残疾' };
    const category = page.locator('table.fields tbody tr', { hasText: '残疾类别' }).locator('.value');
    assert.equal((await category.textContent()).trim(), categories[person.fields.disability_category]);
    // personal numbers are masked until revealed
    const index = await page.locator('table.fields tbody tr').evaluateAll((rows) => rows.findIndex((r) => r.querySelector('button.reveal')));
    assert.ok(index >= 0, 'a masked field with a reveal button');
    const idRow = page.locator('table.fields tbody tr').nth(index);
    const masked = await idRow.locator('.value').textContent();
    assert.match(masked, /\*{3,}/);
    await checkPage(page, '04-head-record');
    await idRow.locator('button.reveal').click();
    await idRow.locator('.note').waitFor();
    const shown = await idRow.locator('.value').textContent();
    assert.doesNotMatch(shown, /\*/);
    assert.ok(shown.length >= 11, shown);
});

test('township head: resolves the conflict side by side; the tablets pull the chosen value', async () => {
    const page = env.headPage;
    await page.getByRole('link', { name: '冲突' }).click();
    await page.locator('main h1', { hasText: '未解决的冲突' }).waitFor();
    const card = page.locator('article.conflict', { has: page.locator(`a[href="#/record/${env.household}"]`) });
    await card.waitFor();
    const values = await card.locator('.side .big').allTextContents();
    assert.deepEqual([...values].sort(), ['21', '22']);
    await checkPage(page, '05-head-conflicts');
    await card.getByLabel(/输入正确的值/).fill('23');
    await card.getByRole('button', { name: '使用输入的值' }).click();
    await page.locator('#status', { hasText: '冲突已解决' }).waitFor();
    await page.locator(`article.conflict a[href="#/record/${env.household}"]`).waitFor({ state: 'detached' });
    await tabletA().sync();
    const rec = (await tabletA().list('household')).find((r) => r.id === env.household);
    assert.equal(rec.fields.members, 23, rec.text);
});

test('township head: sends a record back with a comment; the tablet receives it on its next sync', async () => {
    const page = env.headPage;
    await page.goto(`${env.url}/#/record/${env.person.id}`);
    await page.locator('form.review').waitFor();
    const form = page.locator('form.review');
    await form.getByLabel('退回（有问题）').check();
    await form.getByRole('button', { name: '提交' }).click();
    // a comment is required
    await form.locator('.field-error', { hasText: '必须填写意见' }).waitFor();
    const comment = '请核对出生日期和残疾等级';
    await form.getByLabel('意见').fill(comment);
    await form.getByRole('button', { name: '提交' }).click();
    await page.locator('#status', { hasText: '审核结果已保存' }).waitFor();
    await page.locator('form.review', { hasText: comment }).waitFor();
    await checkPage(page, '06-head-record-returned');
    await tabletA().sync();
    const rec = (await tabletA().list('person')).find((r) => r.id === env.person.id);
    assert.equal(rec.status, 'returned', rec.text);
    assert.ok(rec.text.includes(comment), rec.text);
});

test('township head: repairs a rejected submission on the page; the tablet then has the record', async () => {
    const page = env.headPage;
    // a worker records a household with 99 members (at most 30): rejected and quarantined
    const model = (await tabletA().list('household')).find((r) => r.fields);
    const fields = Object.fromEntries(Object.entries(model.fields).filter(([k]) => !k.startsWith('_')));
    Object.assign(fields, { members: 99, head_name: '修正测试户', notes: '第一行\n第二行' });
    const file = path.join(env.tmp, 'bad-household.json');
    fs.writeFileSync(file, JSON.stringify(fields));
    const id = (await tabletA().cmd(['record', 'household', '--json', file])).stdout.trim();
    await tabletA().sync({ allowFail: true });
    assert.equal((await tabletA().list('household')).find((r) => r.id === id)?.status, 'rejected');

    await page.getByRole('link', { name: '待修正' }).click();
    const row = page.locator('main table tbody tr', { hasText: '家庭人口数' });
    await row.getByRole('link', { name: '修正' }).click();
    await page.locator('main h1', { hasText: '修正被拒绝的提交' }).waitFor();
    const members = page.getByLabel('家庭人口数', { exact: true });
    assert.equal(await members.inputValue(), '99');
    assert.equal(await members.getAttribute('aria-invalid'), 'true');
    await checkPage(page, '07a-head-repair');
    // only what the head changed is sent (the two-line notes stay as they were)
    const resubmitted = () => page.waitForRequest((r) => r.url().endsWith('/resubmit') && r.method() === 'POST');
    // still out of range: the reason is shown in Chinese, nothing is stored
    await members.fill('40');
    let sent = resubmitted();
    await page.getByRole('button', { name: '修正后重新提交' }).click();
    assert.deepEqual(JSON.parse((await sent).postData()), { fields: { members: 40 } });
    await page.locator('form.repair .field-error', { hasText: '值无效' }).waitFor();
    await members.fill('4');
    sent = resubmitted();
    await page.getByRole('button', { name: '修正后重新提交' }).click();
    assert.deepEqual(JSON.parse((await sent).postData()), { fields: { members: 4 } });
    await page.locator('#status', { hasText: '已重新提交' }).waitFor();
    await page.locator('main h1', { hasText: '待修正' }).waitFor();
    assert.equal(await page.locator('main table tbody tr', { hasText: '家庭人口数' }).count(), 0);
    // the worker's tablet gets the repaired record
    await tabletA().sync();
    const after = (await tabletA().list('household')).find((r) => r.id === id);
    assert.equal(after?.status, 'synced', after?.text);
    assert.equal(after.fields.members, 4);
    assert.equal(after.fields.head_name, '修正测试户');
    assert.equal(after.fields.notes, '第一行\n第二行');
});

test('township head: quarantine list, then approves the month', async () => {
    const page = env.headPage;
    await page.getByRole('link', { name: '待修正' }).click();
    await page.locator('main h1', { hasText: '待修正' }).waitFor();
    await checkPage(page, '07-head-quarantine');
    await page.getByRole('link', { name: '本月概况' }).click();
    await page.locator('#approve-month').click();
    const dialog = page.locator('dialog[open]');
    await dialog.waitFor();
    await checkPage(page, '08-head-approve-dialog');
    await dialog.getByRole('button', { name: '确认' }).click();
    await page.locator('#status', { hasText: '数据已审批' }).waitFor();
    await page.locator('.cards .card', { hasText: '已审批' }).waitFor();
    await checkPage(page, '09-head-approved');
});

test('language switch: English, remembered, and back to Chinese', async () => {
    const page = env.headPage;
    await page.locator('#lang').click();
    await page.waitForFunction(() => document.documentElement.lang === 'en');
    await page.locator('main h1', { hasText: /·/ }).waitFor();
    assert.equal(await page.locator('#logout').textContent(), 'Log out');
    await page.locator('.cards', { hasText: 'Open conflicts' }).waitFor();
    await checkPage(page, '10-head-overview-en');
    await page.reload();
    await page.locator('#logout', { hasText: 'Log out' }).waitFor();
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    await page.locator('#lang').click();
    await page.waitForFunction(() => document.documentElement.lang === 'zh-CN');
    await page.locator('#logout', { hasText: '退出登录' }).waitFor();
});

test('the server cannot be reached: a clear message and a retry', async () => {
    const page = env.headPage;
    await page.route('**/v1/review/**', (route) => route.abort('failed'));
    await page.getByRole('link', { name: '冲突' }).click();
    const box = page.locator('.error-box', { hasText: '无法连接服务器' });
    await box.waitFor();
    await page.locator('main h1', { hasText: '无法显示此页面' }).waitFor();
    await checkPage(page, '11-offline');
    await page.unroute('**/v1/review/**');
    await box.getByRole('button', { name: '重试' }).click();
    await page.locator('main h1', { hasText: '未解决的冲突' }).waitFor();
});

test('session expiry and logout bring back the login with a message', async () => {
    const page = env.headPage;
    await page.context().clearCookies();
    await page.getByRole('link', { name: '记录' }).click();
    await page.locator('#login-message', { hasText: '登录已过期' }).waitFor();
    await login(page, env.head.username, env.head.password);
    await page.locator('#logout').click();
    await page.locator('#login-message', { hasText: '已退出登录' }).waitFor();
    // the session is gone on the server too
    const r = await page.evaluate(async () => (await fetch('/v1/session')).status);
    assert.equal(r, 401);
    await page.context().close();
});

test('a field worker cannot log in to the page; a wrong password is refused', async () => {
    const page = await newPage();
    await page.goto(`${env.url}/`);
    await page.getByLabel('用户名').fill(env.worker);
    await page.getByLabel('密码').fill('demo-worker-2026');
    await page.getByRole('button', { name: '登录' }).click();
    await page.locator('#login-message', { hasText: '外业人员' }).waitFor();
    await page.getByLabel('密码').fill('wrong-password');
    await page.getByLabel('用户名').fill(env.head.username);
    await page.getByRole('button', { name: '登录' }).click();
    await page.locator('#login-message', { hasText: '用户名或密码不正确' }).waitFor();
    await page.context().close();
});

test('district admin: district table, charts, CSV export', async () => {
    const page = await newPage();
    env.adminPage = page;
    await login(page, env.admin.username, env.admin.password);
    await page.locator('table.district tbody tr').first().waitFor();
    const rows = await page.locator('table.district tbody tr').count();
    assert.equal(rows, env.demo.district.townships);
    const row = page.locator('table.district tbody tr', { hasText: '已审批' });
    assert.equal(await row.count(), 1, 'exactly the head\'s township is approved');
    env.townshipName = (await row.locator('th').textContent()).trim();
    await page.locator('table.district tfoot tr.total').waitFor();
    assert.equal(await page.locator('svg.chart').count(), 2);
    await checkPage(page, '12-admin-district');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: '导出 CSV' }).click()]);
    const file = path.join(opts.artifacts, 'district-export.csv');
    await download.saveAs(file);
    const csv = fs.readFileSync(file, 'utf8');
    assert.ok(csv.startsWith('\ufeff'), 'CSV starts with a BOM');
    const lines = csv.split('\r\n').filter(Boolean);
    assert.ok(lines.length >= env.demo.district.townships + 2, `${lines.length} lines`);
    assert.ok(csv.includes(env.townshipName), `the CSV names ${env.townshipName}`);
    // the head's reveal is in the access log
    await page.getByRole('link', { name: '访问日志' }).click();
    await page.locator('table.access-log tbody tr', { hasText: env.person.id }).filter({ hasText: env.head.username }).first().waitFor();
    await checkPage(page, '13-admin-access-log');
});

test('district admin: users, enrolment code with QR, revoking a tablet refuses its next sync', async () => {
    const page = env.adminPage;
    await page.getByRole('link', { name: '用户' }).click();
    await page.locator('main table tbody tr', { hasText: env.head.username }).waitFor();
    await checkPage(page, '14-admin-users');
    await page.getByRole('link', { name: '平板' }).click();
    await page.locator(`tr[data-device="${tabletB().device}"]`).waitFor();
    // a new enrolment code for the worker, usable by a tablet
    await page.getByLabel('外业人员').selectOption(env.worker);
    await page.getByRole('button', { name: '生成' }).click();
    const codeEl = page.locator('.code-result .code');
    await codeEl.waitFor();
    const code = (await codeEl.textContent()).trim();
    assert.match(code, /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    if (await page.locator('.code-result img.qr').count()) {
        assert.ok(await page.locator('.code-result img.qr').evaluate((img) => img.complete && img.naturalWidth > 0));
    }
    await checkPage(page, '15-admin-tablets-code');
    const tabletC = new Tablet('tablet-c');
    await tabletC.enrol(code);
    // revoke tablet B with confirmation
    const row = page.locator(`tr[data-device="${tabletB().device}"]`);
    await row.getByRole('button', { name: /吊销/ }).click();
    const dialog = page.locator('dialog[open]');
    await dialog.waitFor();
    await checkPage(page, '16-admin-revoke-dialog');
    await dialog.getByRole('button', { name: '吊销' }).click();
    await page.locator('#status', { hasText: '已吊销' }).waitFor();
    await page.locator(`tr[data-device="${tabletB().device}"]`, { hasText: '已吊销' }).waitFor();
    await checkPage(page, '17-admin-tablets-revoked');
    const r = await tabletB().sync({ allowFail: true });
    assert.notEqual(r.code, 0, 'the revoked tablet\'s sync fails');
    assert.match(`${r.stdout}${r.stderr}`, /revoked/i);
    assert.ok(!fs.existsSync(path.join(tabletB().dir, 'enrolment.json')), 'the revoked tablet wiped its enrolment');
    // the other tablets still sync
    assert.equal((await tabletA().sync()).code, 0);
    assert.equal((await tabletC.sync()).code, 0);
    await page.context().close();
});
