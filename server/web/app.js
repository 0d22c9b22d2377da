// The page: session, shell (header, navigation, status messages), hash routes and errors.
// Views live in views-head.js (township review) and views-admin.js (district administration).
import { t, setLang, applyLang, currentLang } from './i18n.js';
import { request, get, setCsrf, ApiError } from './api.js';
import { h, clear, field } from './dom.js';
import * as head from './views-head.js';
import * as admin from './views-admin.js';

const $ = (sel) => document.querySelector(sel);

const state = {
    session: null, // the GET/POST /v1/session answer
    catalog: null, // GET /v1/catalog, when the server has it
    names: new Map(), // division code → name
    expiryTimer: 0,
    route: '',
    refs: null, // the promise of loadReferenceData()
};

// China date of a server clock "ms:counter:device" → "YYYY-MM".
function monthOf(clock) {
    const ms = Number(String(clock || '').split(':')[0]) || Date.now();
    const d = new Date(ms + 8 * 3600 * 1000);
    return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

// What the views get: the session, helpers for messages, errors and navigation.
const ctx = {
    get session() {
        return state.session;
    },
    get role() {
        return state.session?.user?.role || '';
    },
    get catalog() {
        return state.catalog;
    },
    names: state.names,
    currentMonth() {
        return monthOf(state.session?.server_clock);
    },
    nameOf(code) {
        return state.names.get(code) || code || t('empty');
    },
    rememberNames(pairs) {
        for (const [code, name] of pairs) if (code && name) state.names.set(code, name);
    },
    status(msg) {
        const el = $('#status');
        el.textContent = '';
        // a fresh text node so screen readers announce a repeated message too
        setTimeout(() => {
            el.textContent = msg;
        }, 30);
    },
    clearAlert() {
        clear($('#alert'));
    },
    // Explains an error; `retry` (a function) adds a Retry button for network failures.
    fail(e, retry) {
        if (e instanceof ApiError && e.kind === 'session') {
            toLogin('session_expired');
            return;
        }
        const alert = $('#alert');
        clear(alert);
        let msg;
        if (!(e instanceof ApiError)) {
            console.error(e);
            msg = t('server_error', { code: String(e?.message || e) });
        } else if (e.kind === 'offline') msg = t('offline');
        else if (e.kind === 'timeout') msg = t('timeout');
        else if (e.status === 404) msg = t('not_found');
        else if (e.status === 403) msg = t('forbidden');
        else if (e.status === 422) msg = t('invalid_value', { message: (currentLang() === 'zh' && e.detail.message_zh) || e.message });
        else msg = t('server_error', { code: `${e.status} ${e.code}` });
        const box = h('div', { class: 'error-box', role: 'alert' }, h('p', {}, msg));
        if (retry && e instanceof ApiError && (e.kind === 'offline' || e.kind === 'timeout' || e.status >= 500)) {
            const b = h('button', { type: 'button', class: 'retry' }, t('retry'));
            b.addEventListener('click', () => {
                clear(alert);
                retry();
            });
            box.append(b);
        }
        alert.append(box);
    },
    navigate(hash) {
        if (location.hash === hash) render();
        else location.hash = hash;
    },
    refresh() {
        render();
    },
};

// ---- session ----

function scheduleExpiry(s) {
    clearTimeout(state.expiryTimer);
    const now = Number(String(s.server_clock || '').split(':')[0]) || Date.now();
    const left = Number(s.expires_ms) - now;
    if (!Number.isFinite(left) || left <= 0) return;
    // check a little after the server's expiry; a 401 on any call also ends the session
    state.expiryTimer = setTimeout(async () => {
        try {
            const again = await get('/v1/session');
            startSession(again, false);
        } catch (e) {
            if (e instanceof ApiError && (e.status === 401 || e.kind === 'session')) toLogin('session_expired');
        }
    }, Math.min(left + 1000, 2147483000));
}

function startSession(s, go = true) {
    state.session = s;
    setCsrf(s.csrf_token);
    scheduleExpiry(s);
    if (s.user?.township && s.user?.township_name) state.names.set(s.user.township, s.user.township_name);
    renderShell();
    state.refs = loadReferenceData();
    if (go) {
        if (!location.hash.startsWith('#/') || location.hash === '#/login') location.hash = defaultRoute();
        else render();
    }
}

function defaultRoute() {
    return ctx.role === 'district_admin' ? '#/district' : '#/overview';
}

// Labels of record types and division names: optional (the page shows codes without them).
async function loadReferenceData() {
    try {
        state.catalog = await get('/v1/catalog');
    } catch {
        state.catalog = null;
    }
    try {
        const d = await get('/v1/divisions');
        for (const x of d.divisions || []) state.names.set(x.code, x.name);
    } catch {
        // names come from the overview and rollups instead
    }
}

function toLogin(messageKey) {
    clearTimeout(state.expiryTimer);
    state.session = null;
    state.catalog = null;
    setCsrf('');
    renderShell();
    if (location.hash !== '#/login') history.replaceState(null, '', '#/login');
    renderLogin(messageKey);
}

async function logout() {
    try {
        await request('POST', '/v1/session/logout', {});
    } catch (e) {
        if (!(e instanceof ApiError && (e.kind === 'session' || e.status === 401))) {
            ctx.fail(e, logout);
            return;
        }
    }
    toLogin('logged_out');
}

// ---- shell ----

function navItems() {
    if (ctx.role === 'district_admin')
        return [
            ['#/district', 'nav_district'],
            ['#/records', 'nav_records'],
            ['#/conflicts', 'nav_conflicts'],
            ['#/quarantine', 'nav_quarantine'],
            ['#/users', 'nav_users'],
            ['#/tablets', 'nav_tablets'],
            ['#/access-log', 'nav_access_log'],
        ];
    return [
        ['#/overview', 'nav_overview'],
        ['#/records', 'nav_records'],
        ['#/conflicts', 'nav_conflicts'],
        ['#/quarantine', 'nav_quarantine'],
    ];
}

function renderShell() {
    applyLang();
    $('#brand').textContent = t('app_title');
    $('#skip').textContent = t('skip');
    const langBtn = $('#lang');
    langBtn.textContent = t('lang_switch');
    langBtn.setAttribute('lang', currentLang() === 'zh' ? 'en' : 'zh-CN');
    langBtn.setAttribute('aria-label', t('lang_switch_label'));
    $('#main').setAttribute('aria-label', t('main_label'));
    const sess = $('#session');
    clear(sess);
    const nav = $('#nav');
    clear(nav);
    nav.setAttribute('aria-label', t('nav_label'));
    if (!state.session) {
        nav.hidden = true;
        return;
    }
    const u = state.session.user;
    sess.append(
        h('span', { class: 'who' }, t('signed_in_as', { user: u.username, role: t(`role_${u.role}`) })),
        h('button', { type: 'button', id: 'logout', onclick: logout }, t('logout'))
    );
    const current = `#/${(location.hash.slice(2).split(/[/?]/)[0] || '')}`;
    nav.append(
        h(
            'ul',
            {},
            navItems().map(([href, key]) =>
                h('li', {}, h('a', { href, 'aria-current': href === current ? 'page' : false }, t(key)))
            )
        )
    );
    nav.hidden = false;
}

// ---- login ----

function renderLogin(messageKey) {
    const main = $('#main');
    clear(main);
    ctx.clearAlert();
    const user = h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
    const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
    const msg = h('p', { class: 'form-message', id: 'login-message', role: 'alert' });
    if (messageKey) msg.textContent = t(messageKey);
    const btn = h('button', { type: 'submit', class: 'primary' }, t('login'));
    const form = h(
        'form',
        { class: 'login', 'aria-labelledby': 'login-title', novalidate: true },
        h('h1', { id: 'login-title', tabindex: '-1' }, t('login_title')),
        h('p', {}, t('login_intro')),
        msg,
        field(t('username'), user),
        field(t('password'), pass),
        btn
    );
    const submit = async (e) => {
        e?.preventDefault();
        if (!user.value.trim() || !pass.value) {
            msg.textContent = t('bad_login');
            (user.value.trim() ? pass : user).focus();
            return;
        }
        btn.disabled = true;
        msg.textContent = t('logging_in');
        try {
            const s = await request('POST', '/v1/session', { username: user.value.trim(), password: pass.value });
            pass.value = '';
            startSession(s);
        } catch (err) {
            btn.disabled = false;
            clear(msg);
            if (err.kind === 'offline' || err.kind === 'timeout') {
                msg.textContent = t(err.kind);
                msg.append(' ', h('button', { type: 'button', class: 'retry', onclick: () => submit() }, t('retry')));
            } else if (err.status === 401) msg.textContent = t('bad_login');
            else if (err.status === 403) msg.textContent = t('worker_forbidden');
            else if (err.status === 429) msg.textContent = t('rate_limited');
            else msg.textContent = t('server_error', { code: `${err.status} ${err.code}` });
            pass.focus();
        }
    };
    form.addEventListener('submit', submit);
    main.append(form);
    user.focus();
}

// ---- routes ----

function parseHash() {
    const raw = location.hash.startsWith('#/') ? location.hash.slice(2) : '';
    const [path, qs] = raw.split('?');
    return { parts: path.split('/').map(decodeURIComponent), params: new URLSearchParams(qs || '') };
}

async function render() {
    if (!state.session) return;
    const { parts, params } = parseHash();
    const main = $('#main');
    renderShell();
    ctx.clearAlert();
    clear(main);
    const loading = h('p', { class: 'loading' }, t('loading'));
    main.append(loading);
    const name = parts[0] || '';
    const isAdmin = ctx.role === 'district_admin';
    const routes = {
        overview: () => head.overview(main, ctx, params),
        records: () => head.records(main, ctx, params),
        record: () => head.record(main, ctx, parts[1] || ''),
        conflicts: () => head.conflicts(main, ctx),
        quarantine: () => (parts[1] ? head.quarantineEntry(main, ctx, parts[1]) : head.quarantine(main, ctx)),
        district: isAdmin ? () => admin.district(main, ctx, params) : null,
        users: isAdmin ? () => admin.users(main, ctx) : null,
        tablets: isAdmin ? () => admin.tablets(main, ctx) : null,
        'access-log': isAdmin ? () => admin.accessLog(main, ctx) : null,
    };
    const view = routes[name];
    const routeKey = location.hash;
    state.route = routeKey;
    try {
        await state.refs; // labels and names first (never fails: they are optional)
        if (!view) {
            if (!name) {
                location.replace(defaultRoute());
                return;
            }
            clear(main);
            main.append(h('h1', { tabindex: '-1' }, t('page_not_found')));
        } else {
            const frag = await view();
            if (state.route !== routeKey) return; // the user moved on meanwhile
            clear(main);
            if (frag) main.append(frag);
        }
        const h1 = main.querySelector('h1');
        if (h1) {
            h1.setAttribute('tabindex', '-1');
            h1.focus({ preventScroll: false });
        }
    } catch (e) {
        if (state.route !== routeKey) return;
        clear(main);
        if (!(e instanceof ApiError && e.kind === 'session'))
            main.append(h('h1', { tabindex: '-1' }, t('page_error')));
        ctx.fail(e, render);
    }
}

function clearStatus() {
    $('#status').textContent = '';
}

window.addEventListener('hashchange', () => {
    if (!location.hash.startsWith('#/')) return; // the skip link and in-page anchors
    clearStatus(); // a message belongs to the page it was said on
    if (!state.session) {
        if (location.hash !== '#/login') history.replaceState(null, '', '#/login');
        return;
    }
    render();
});

$('#lang').addEventListener('click', () => {
    setLang(currentLang() === 'zh' ? 'en' : 'zh');
    clearStatus();
    renderShell();
    if (state.session) render();
    else renderLogin();
    $('#lang').focus();
});

$('#skip').addEventListener('click', (e) => {
    e.preventDefault();
    $('#main').focus();
});

async function boot() {
    applyLang();
    renderShell();
    try {
        const s = await get('/v1/session');
        startSession(s);
    } catch (e) {
        if (e instanceof ApiError && (e.kind === 'offline' || e.kind === 'timeout')) {
            clear($('#main'));
            ctx.fail(e, boot);
            return;
        }
        toLogin(e instanceof ApiError && e.code === 'session_expired' ? 'session_expired' : undefined);
    }
}

boot();
