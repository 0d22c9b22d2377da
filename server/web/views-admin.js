// District administration: the district-month table with charts and exports, users, tablets.
import { t, num, pct, date, dateTime, monthName, shortMonth, indicatorName, currentLang } from './i18n.js';
import { get, post, query, ApiError } from './api.js';
import { h, field, id, confirmDialog } from './dom.js';
import { barChart, lineChart } from './charts.js';
import { monthForm, tableWrap, dataTable } from './views-head.js';

const FOUR_ONES = ['four_ones_verified', 'four_ones_assessed', 'four_ones_registered', 'four_ones_served'];

function addMonths(ym, k) {
    const [y, m] = ym.split('-').map(Number);
    const d = new Date(Date.UTC(y, m - 1 + k, 15));
    return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

async function loadTrend(to) {
    const from = addMonths(to, -11);
    try {
        const r = await get(`/v1/rollups/trend${query({ from, to })}`);
        if (Array.isArray(r.months)) return r.months.map((m) => ({ month: m.month, total: m.total ?? m.live ?? m }));
    } catch (e) {
        // 404, or 400 from a server that takes "trend" for a month: no trend endpoint yet
        if (!(e instanceof ApiError) || (e.status !== 404 && e.status !== 400)) throw e;
    }
    // Fallback while the server has no trend endpoint: one rollup per month.
    const months = Array.from({ length: 12 }, (_, i) => addMonths(from, i));
    const all = await Promise.all(months.map((m) => get(`/v1/rollups/${m}`)));
    return all.map((r, i) => ({ month: months[i], total: r.total || {} }));
}

export async function district(main, ctx, params) {
    const month = params.get('month') || ctx.currentMonth();
    const [roll, trend] = await Promise.all([get(`/v1/rollups/${month}`), loadTrend(month)]);
    const rows = roll.townships || [];
    ctx.rememberNames(rows.map((r) => [r.township, r.name]));
    const total = roll.total || {};
    const out = document.createDocumentFragment();
    out.append(h('h1', {}, t('district_title', { month: monthName(month) })), monthForm(ctx, '#/district', month));
    // exports
    const lang = currentLang() === 'en' ? 'en' : '';
    const link = (format, label) =>
        h('a', { class: 'button', href: `/v1/rollups/${month}/export${query({ format, lang })}`, download: '' }, label);
    out.append(h('p', { class: 'exports', role: 'group', 'aria-label': t('exports') }, link('csv', t('export_csv')), ' ', link('xlsx', t('export_xlsx'))));
    // the table
    const cells = (fig) => [
        h('td', { class: 'num' }, num(fig.four_ones_base ?? 0)),
        FOUR_ONES.map((k) => h('td', { class: 'num' }, num(fig[k] ?? 0), h('span', { class: 'pct' }, ` (${pct(fig[k] ?? 0, fig.four_ones_base)})`))),
        h('td', { class: 'num' }, num(fig.home_visits ?? 0)),
        h('td', { class: 'num' }, num(fig.monitoring_checks ?? 0)),
        h('td', { class: 'num' }, num(fig.households_flagged ?? 0)),
        h('td', { class: 'num' }, num(fig.open_conflicts ?? 0)),
    ];
    const table = h(
        'table',
        { class: 'district' },
        h('caption', { class: 'visually-hidden' }, t('district_title', { month: monthName(month) })),
        h(
            'thead',
            {},
            h(
                'tr',
                {},
                h('th', { scope: 'col' }, t('township')),
                h('th', { scope: 'col', class: 'num' }, indicatorName('four_ones_base')),
                FOUR_ONES.map((k) => h('th', { scope: 'col', class: 'num' }, indicatorName(k))),
                h('th', { scope: 'col', class: 'num' }, indicatorName('home_visits')),
                h('th', { scope: 'col', class: 'num' }, indicatorName('monitoring_checks')),
                h('th', { scope: 'col', class: 'num' }, indicatorName('households_flagged')),
                h('th', { scope: 'col', class: 'num' }, indicatorName('open_conflicts')),
                h('th', { scope: 'col' }, t('approval')),
                h('th', { scope: 'col', class: 'num' }, t('revision')),
                h('th', { scope: 'col' }, t('changed_since_approval'))
            )
        ),
        h(
            'tbody',
            {},
            rows.map((r) =>
                h(
                    'tr',
                    {},
                    h('th', { scope: 'row' }, r.name || r.township),
                    cells(r.live || {}),
                    h('td', {}, h('span', { class: `state ${r.approved ? 'approved' : 'received'}` }, r.approved ? t('approved') : t('not_approved'))),
                    h('td', { class: 'num' }, num(r.revision ?? 0)),
                    h('td', {}, r.changed_since_approval ? h('span', { class: 'tag warn' }, t('changed_yes')) : t('changed_no'))
                )
            )
        ),
        h('tfoot', {}, h('tr', { class: 'total' }, h('th', { scope: 'row' }, t('district_total')), cells(total), h('td', {}), h('td', {}), h('td', {})))
    );
    out.append(tableWrap(t('district_title', { month: monthName(month) }), table));
    // charts
    const coverage = barChart({
        title: t('chart_coverage'),
        desc: t('chart_coverage_desc'),
        rows: rows.map((r) => {
            const f = r.live || {};
            return {
                label: r.name || r.township,
                value: f.four_ones_base ? f.four_ones_verified / f.four_ones_base : 0,
                text: pct(f.four_ones_verified ?? 0, f.four_ones_base),
            };
        }),
    });
    const months = trend.map((x) => x.month);
    const trendChart = lineChart({
        title: t('chart_trend'),
        desc: t('chart_trend_desc'),
        months,
        series: [
            { name: t('trend_visits'), values: trend.map((x) => x.total.home_visits ?? 0), cls: 's1' },
            { name: t('trend_checks'), values: trend.map((x) => x.total.monitoring_checks ?? 0), cls: 's2' },
        ],
        xLabel: shortMonth,
        yFormat: num,
    });
    const trendTable = h(
        'details',
        {},
        h('summary', {}, `${t('chart_trend')} (${t('value')})`),
        h(
            'table',
            {},
            h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('month')), h('th', { scope: 'col', class: 'num' }, t('trend_visits')), h('th', { scope: 'col', class: 'num' }, t('trend_checks')))),
            h('tbody', {}, trend.map((x) => h('tr', {}, h('th', { scope: 'row' }, monthName(x.month)), h('td', { class: 'num' }, num(x.total.home_visits ?? 0)), h('td', { class: 'num' }, num(x.total.monitoring_checks ?? 0)))))
        )
    );
    out.append(
        h(
            'section',
            { class: 'charts', 'aria-labelledby': 'charts-h' },
            h('h2', { id: 'charts-h' }, t('charts')),
            h('figure', {}, h('figcaption', {}, t('chart_coverage')), coverage),
            h('figure', {}, h('figcaption', {}, t('chart_trend')), trendChart, trendTable)
        )
    );
    return out;
}

// ---- users ----

async function townshipNames(ctx) {
    if ([...ctx.names.keys()].some((c) => c.length === 9)) return;
    try {
        const r = await get(`/v1/rollups/${ctx.currentMonth()}`);
        ctx.rememberNames((r.townships || []).map((x) => [x.township, x.name]));
    } catch {
        // codes instead of names
    }
}

function roleName(r) {
    return t(`role_${r}`);
}

export async function users(main, ctx) {
    const [data] = await Promise.all([get('/v1/admin/users'), townshipNames(ctx)]);
    const list = data.users || [];
    const out = document.createDocumentFragment();
    out.append(h('h1', {}, t('users_title')));
    const region = dataTable(
        t('users_title'),
        [t('username'), t('role'), t('scope'), t('status'), t('created')],
        list.map((u) =>
            h(
                'tr',
                {},
                h('th', { scope: 'row' }, u.username),
                h('td', {}, roleName(u.role)),
                h('td', {}, u.township ? `${ctx.nameOf(u.township)}${(u.villages || []).length ? ` (${u.villages.map((v) => ctx.nameOf(v)).join('、')})` : ''}` : t('district_total')),
                h('td', {}, u.disabled ? h('span', { class: 'tag warn' }, t('disabled')) : t('active')),
                h('td', {}, date(u.created_ms))
            )
        )
    );
    out.append(region);
    return out;
}

// ---- tablets ----

function codeForm(ctx, workers) {
    const user = h(
        'select',
        { name: 'username', required: true },
        workers.map((u) => h('option', { value: u.username }, `${u.username} · ${ctx.nameOf(u.township)}`))
    );
    const ttl = h('input', { type: 'number', name: 'ttl_minutes', min: 1, max: 10080, value: 30, required: true, inputmode: 'numeric' });
    const result = h('div', { class: 'code-result', 'aria-live': 'polite' });
    const btn = h('button', { type: 'submit', class: 'primary' }, t('create_code'));
    const headingId = id('nc');
    const form = h(
        'form',
        { class: 'new-code', 'aria-labelledby': headingId },
        h('h2', { id: headingId }, t('new_code')),
        h('div', { class: 'inline' }, field(t('for_user'), user), field(t('valid_minutes'), ttl), btn),
        result
    );
    form.addEventListener('submit', async (e) => {
        e.preventDefault();
        btn.disabled = true;
        try {
            const r = await post('/v1/admin/enrolment-codes', { username: user.value, ttl_minutes: Number(ttl.value) || 30 });
            result.replaceChildren(
                h('p', { class: 'code-text' }, t('code_created', { code: r.code, until: dateTime(r.expires_ms) })),
                h('p', { class: 'code', lang: 'en' }, r.code),
                r.qr_svg
                    ? h('img', { class: 'qr', width: 220, height: 220, alt: t('qr_alt', { code: r.code }), src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(r.qr_svg)}` })
                    : null
            );
        } catch (x) {
            ctx.fail(x);
        } finally {
            btn.disabled = false;
        }
    });
    return form;
}

export async function tablets(main, ctx) {
    const [devs, us] = await Promise.all([get('/v1/admin/devices'), get('/v1/admin/users'), townshipNames(ctx)]);
    const list = devs.devices || [];
    const workers = (us.users || []).filter((u) => u.role === 'field_worker' && !u.disabled);
    const out = document.createDocumentFragment();
    out.append(h('h1', {}, t('tablets_title')), codeForm(ctx, workers));
    const revokeCell = (d) => {
        if (d.revoked_ms) return h('td', {}, h('span', { class: 'tag warn' }, `${t('revoked')} ${date(d.revoked_ms)}`));
        const b = h('button', { type: 'button', class: 'danger small', 'aria-label': t('revoke_label', { device: d.label || d.device, user: d.user }) }, t('revoke'));
        b.addEventListener('click', async () => {
            const ok = await confirmDialog(t('revoke_confirm', { device: d.label || d.device, user: d.user }), t('revoke'), t('cancel'));
            if (!ok) {
                b.focus();
                return;
            }
            b.disabled = true;
            try {
                await post(`/v1/admin/devices/${encodeURIComponent(d.device)}/revoke`, {});
                ctx.status(t('tablet_revoked', { device: d.label || d.device }));
                ctx.refresh();
            } catch (x) {
                b.disabled = false;
                ctx.fail(x);
            }
        });
        return h('td', {}, h('span', {}, t('active')), ' ', b);
    };
    const region = dataTable(
        t('tablets_title'),
        [t('device'), t('label'), t('user'), t('enrolled'), t('last_push'), t('status')],
        list.map((d) =>
            h(
                'tr',
                { 'data-device': d.device },
                h('th', { scope: 'row' }, d.device),
                h('td', {}, d.label || t('empty')),
                h('td', {}, d.user),
                h('td', {}, date(d.enrolled_ms)),
                h('td', {}, d.last_push_ms ? dateTime(d.last_push_ms) : t('never')),
                revokeCell(d)
            )
        )
    );
    out.append(h('h2', {}, t('tablets_title')), region);
    return out;
}

// ---- access log (who revealed or exported what) ----

export async function accessLog(main, ctx) {
    const data = await get('/v1/admin/access-log?limit=200');
    const list = data.entries || [];
    const out = document.createDocumentFragment();
    out.append(h('h1', {}, t('access_log_title')), h('p', {}, t('access_log_intro')));
    if (!list.length) {
        out.append(h('p', { class: 'empty' }, t('no_access_log')));
        return out;
    }
    const region = dataTable(
        t('access_log_title'),
        [t('when'), t('user'), t('action'), t('record'), t('field'), t('detail')],
        list.map((e) =>
            h(
                'tr',
                {},
                h('td', {}, dateTime(e.at_ms)),
                h('td', {}, e.user),
                h('td', {}, e.action),
                h('td', {}, e.record_id ? h('a', { href: `#/record/${encodeURIComponent(e.record_id)}` }, e.record_id) : t('empty')),
                h('td', {}, e.field || t('empty')),
                h('td', {}, e.detail || t('empty'))
            )
        ),
        { class: 'access-log' }
    );
    out.append(region);
    return out;
}
