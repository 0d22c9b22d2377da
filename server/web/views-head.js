// Review views (township heads; district admins see the same over the whole district):
// month overview, records list, one record with its history and review, conflicts, quarantine.
import {
    t,
    num,
    pct,
    dateTime,
    isoDate,
    monthName,
    indicatorName,
    collectionName,
    collectionKeys,
    fieldName,
    valueName,
    currentLang,
} from './i18n.js';
import { get, post, query, ApiError } from './api.js';
import { h, field, id, confirmDialog } from './dom.js';

const FOUR_ONES = ['four_ones_verified', 'four_ones_assessed', 'four_ones_registered', 'four_ones_served'];
const PAGE = 50;

// A month chooser that navigates to `route?month=…`.
export function monthForm(ctx, route, month) {
    const input = h('input', { type: 'month', name: 'month', value: month, required: true });
    const form = h(
        'form',
        { class: 'inline' },
        field(t('month'), input),
        h('button', { type: 'submit' }, t('show'))
    );
    form.addEventListener('submit', (e) => {
        e.preventDefault();
        if (/^\d{4}-\d{2}$/.test(input.value)) ctx.navigate(`${route}?month=${input.value}`);
    });
    return form;
}

export function tableWrap(labelText, table) {
    return h('div', { class: 'table-wrap', role: 'region', 'aria-label': labelText, tabindex: '0' }, table);
}

// A list as a table in its labelled, scrollable region: a visually hidden caption, a header row
// of column titles, and the body rows (<tr> elements).
export function dataTable(caption, columns, rows, attrs = {}) {
    const table = h(
        'table',
        attrs,
        h('caption', { class: 'visually-hidden' }, caption),
        h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rows)
    );
    return tableWrap(caption, table);
}

function cover(fig, key) {
    const n = fig?.[key] ?? 0;
    const d = fig?.four_ones_base ?? 0;
    return h('td', { class: 'num' }, num(n), h('span', { class: 'pct' }, ` (${pct(n, d)})`));
}

function figuresOf(x) {
    return x?.live ?? x?.figures ?? x ?? {};
}

// ---- overview ----

async function loadOverview(ctx, month) {
    const township = ctx.session.user.township;
    try {
        return await get(`/v1/review/overview${query({ month, township })}`);
    } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 404 || e.code !== 'not_found') throw e;
    }
    // Fallback while the server has no overview endpoint: the township's rollup and counts.
    const [roll, conf, quar, waiting] = await Promise.all([
        get(`/v1/rollups/${month}`),
        get('/v1/review/conflicts?status=open'),
        get('/v1/review/quarantine?status=open'),
        get('/v1/review/records?review=received&limit=1'),
    ]);
    const row = (roll.townships || []).find((x) => x.township === township) || roll.townships?.[0] || {};
    return {
        month,
        township: row.township,
        name: row.name,
        live: row.live,
        villages: [],
        open_conflicts: (conf.conflicts || []).length,
        quarantined: (quar.quarantine || []).length,
        awaiting_review: waiting.total ?? 0,
        approved: row.approved,
        revision: row.revision,
        changed_since_approval: row.changed_since_approval,
    };
}

export async function overview(main, ctx, params) {
    const month = params.get('month') || ctx.currentMonth();
    const o = await loadOverview(ctx, month);
    const townshipCode = o.township?.code ?? o.township ?? ctx.session.user.township;
    const townshipName = o.township?.name ?? o.name ?? ctx.nameOf(townshipCode);
    ctx.rememberNames([[townshipCode, townshipName]]);
    const villages = o.villages || [];
    ctx.rememberNames(villages.map((v) => [v.village ?? v.code, v.name]));
    const total = figuresOf(o.total ?? o.live ?? o);
    const out = document.createDocumentFragment();
    out.append(
        h('h1', {}, t('overview_title', { township: townshipName, month: monthName(month) })),
        monthForm(ctx, '#/overview', month)
    );
    // key figures
    const approved = !!(o.approved ?? o.approval?.approved);
    const revision = o.revision ?? o.approval?.revision ?? 0;
    const changed = !!(o.changed_since_approval ?? o.approval?.changed_since_approval);
    const card = (label, value, href) =>
        h('div', { class: 'card' }, h('dt', {}, label), h('dd', {}, href ? h('a', { href }, value) : value));
    out.append(
        h(
            'dl',
            { class: 'cards', 'aria-label': t('summary') },
            card(indicatorName('home_visits'), num(total.home_visits ?? 0)),
            card(indicatorName('monitoring_checks'), num(total.monitoring_checks ?? 0)),
            card(indicatorName('households_flagged'), num(total.households_flagged ?? 0)),
            card(t('open_conflicts'), num(o.open_conflicts ?? total.open_conflicts ?? 0), '#/conflicts'),
            card(t('quarantined'), num(o.quarantined ?? 0), '#/quarantine'),
            card(t('awaiting_review'), num(o.awaiting_review ?? 0), '#/records?review=received'),
            card(
                t('approval'),
                approved
                    ? `${t('approved')} · ${t('revision')} ${num(revision)}`
                    : `${t('not_approved')}${revision ? ` · ${t('revision')} ${num(revision)}` : ''}${changed ? ` · ${t('changed_since_approval')}` : ''}`
            )
        )
    );
    // four ones per village
    const headRow = h(
        'tr',
        {},
        h('th', { scope: 'col' }, t('village')),
        h('th', { scope: 'col', class: 'num' }, indicatorName('four_ones_base')),
        FOUR_ONES.map((k) => h('th', { scope: 'col', class: 'num' }, indicatorName(k))),
        h('th', { scope: 'col', class: 'num' }, indicatorName('home_visits')),
        h('th', { scope: 'col', class: 'num' }, indicatorName('monitoring_checks')),
        h('th', { scope: 'col', class: 'num' }, indicatorName('households_flagged'))
    );
    const row = (label, fig, isTotal) =>
        h(
            'tr',
            { class: isTotal ? 'total' : false },
            h('th', { scope: 'row' }, label),
            h('td', { class: 'num' }, num(fig.four_ones_base ?? 0)),
            FOUR_ONES.map((k) => cover(fig, k)),
            h('td', { class: 'num' }, num(fig.home_visits ?? 0)),
            h('td', { class: 'num' }, num(fig.monitoring_checks ?? 0)),
            h('td', { class: 'num' }, num(fig.households_flagged ?? 0))
        );
    const captionId = id('cap');
    const table = h(
        'table',
        { 'aria-labelledby': captionId },
        h('caption', { id: captionId, class: 'visually-hidden' }, t('four_ones')),
        h('thead', {}, headRow),
        h(
            'tbody',
            {},
            villages.map((v) => row(v.name || ctx.nameOf(v.village ?? v.code), figuresOf(v), false))
        ),
        h('tfoot', {}, row(t('total'), total, true))
    );
    out.append(h('h2', {}, t('four_ones')), tableWrap(t('four_ones'), table));
    // approve the month (township heads)
    if (ctx.role === 'township_head') {
        const btn = h('button', { type: 'button', class: 'primary', id: 'approve-month' }, t('approve_month'));
        btn.addEventListener('click', async () => {
            const ok = await confirmDialog(t('approve_month_confirm', { month: monthName(month) }), t('confirm'), t('cancel'));
            if (!ok) {
                btn.focus();
                return;
            }
            btn.disabled = true;
            try {
                const r = await post(`/v1/rollups/${month}/approve`, {});
                ctx.status(t('month_approved', { month: monthName(month), revision: num(r.revision ?? 1) }));
                ctx.refresh();
            } catch (e) {
                btn.disabled = false;
                ctx.fail(e);
            }
        });
        out.append(h('section', { class: 'approve', 'aria-label': t('approve_month') }, btn));
    }
    return out;
}

// ---- records ----

function formatValue(ctx, collection, key, v) {
    if (v === null || v === undefined || v === '') return t('empty');
    if (typeof v === 'boolean') return v ? t('yes') : t('no');
    if (Array.isArray(v)) return v.map((x) => formatValue(ctx, collection, key, x)).join('、');
    if (typeof v === 'number') return num(v);
    if (typeof v === 'object') return JSON.stringify(v);
    const f = ctx.catalog?.collections?.[collection]?.fields?.[key];
    if (f?.value_labels) return valueName(collection, key, v, ctx.catalog);
    if (f?.type === 'division' || /^\d{9}(\d{3})?$/.test(v)) return ctx.nameOf(v);
    if (/^\d{4}-\d{2}-\d{2}$/.test(v)) return isoDate(v);
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(v) && !Number.isNaN(Date.parse(v))) return dateTime(Date.parse(v));
    return v;
}

const SKIP_IN_SUMMARY = new Set(['township', 'village', 'person', 'household', 'worker']);

function summary(ctx, rec) {
    const parts = [];
    for (const [k, v] of Object.entries(rec.fields || {})) {
        if (SKIP_IN_SUMMARY.has(k) || k.startsWith('_') || v === null || typeof v === 'object') continue;
        parts.push(`${fieldName(rec.collection, k, ctx.catalog)}: ${formatValue(ctx, rec.collection, k, v)}`);
        if (parts.length === 3) break;
    }
    return parts.join('；');
}

function reviewName(s) {
    return t(`review_${s || 'received'}`);
}

export async function records(main, ctx, params) {
    const f = {
        collection: params.get('collection') || '',
        village: params.get('village') || '',
        review: params.get('review') || '',
        q: params.get('q') || '',
        from: params.get('from') || '',
        to: params.get('to') || '',
        offset: Math.max(0, Number(params.get('offset')) || 0),
    };
    const data = await get(`/v1/review/records${query({ ...f, limit: PAGE, offset: f.offset || '' })}`);
    const out = document.createDocumentFragment();
    out.append(h('h1', {}, t('records_title')));
    // filters
    const opt = (value, label, selected) => h('option', { value, selected: selected === value }, label);
    const coll = h(
        'select',
        { name: 'collection' },
        opt('', t('any'), f.collection),
        (ctx.catalog?.collections ? Object.keys(ctx.catalog.collections) : collectionKeys()).map((k) =>
            opt(k, collectionName(k, ctx.catalog), f.collection)
        )
    );
    const villages = [...ctx.names.entries()].filter(([code]) => code.length === 12);
    const villageSel = villages.length
        ? h('select', { name: 'village' }, opt('', t('any'), f.village), villages.map(([c, n]) => opt(c, n, f.village)))
        : null;
    const review = h(
        'select',
        { name: 'review' },
        opt('', t('any'), f.review),
        ['received', 'has_issues', 'approved'].map((s) => opt(s, reviewName(s), f.review))
    );
    const q = h('input', { type: 'search', name: 'q', value: f.q, placeholder: t('search_placeholder') });
    const from = h('input', { type: 'date', name: 'from', value: f.from });
    const to = h('input', { type: 'date', name: 'to', value: f.to });
    const form = h(
        'form',
        { class: 'filters', role: 'search', 'aria-label': t('filters') },
        field(t('collection'), coll),
        villageSel ? field(t('village'), villageSel) : null,
        field(t('review_state'), review),
        field(t('search'), q),
        field(t('date_from'), from),
        field(t('date_to'), to),
        h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, t('apply')), h('a', { href: '#/records', class: 'button' }, t('reset')))
    );
    form.addEventListener('submit', (e) => {
        e.preventDefault();
        ctx.navigate(
            `#/records${query({ collection: coll.value, village: villageSel?.value || '', review: review.value, q: q.value.trim(), from: from.value, to: to.value })}`
        );
    });
    out.append(form);
    // results
    const items = data.items || [];
    const total = data.total ?? items.length;
    if (!items.length) {
        out.append(h('p', { class: 'empty', role: 'status' }, t('no_results')));
        return out;
    }
    out.append(h('p', { class: 'count' }, t('results', { total: num(total), from: num(f.offset + 1), to: num(f.offset + items.length) })));
    const region = dataTable(
        t('records_title'),
        [t('collection'), t('village'), t('summary'), t('review_state'), t('created_by'), t('updated')],
        items.map((r) =>
            h(
                'tr',
                {},
                h('td', {}, h('a', { href: `#/record/${encodeURIComponent(r.id)}` }, collectionName(r.collection, ctx.catalog))),
                h('td', {}, ctx.nameOf(r.village)),
                h('td', {}, summary(ctx, r), r.deleted ? h('span', { class: 'tag' }, ` ${t('deleted')}`) : null),
                h(
                    'td',
                    {},
                    h('span', { class: `state ${r.review || 'received'}` }, reviewName(r.review)),
                    r.open_conflicts ? h('span', { class: 'tag warn' }, ` ${t('open_conflicts')} ${num(r.open_conflicts)}`) : null
                ),
                h('td', {}, r.created_by || t('empty')),
                h('td', {}, dateTime(r.updated_ms))
            )
        )
    );
    out.append(region);
    // paging
    const pageLink = (offset, label, rel) => {
        const p = new URLSearchParams(params);
        if (offset) p.set('offset', offset);
        else p.delete('offset');
        const qs = p.toString();
        return h('a', { href: `#/records${qs ? `?${qs}` : ''}`, rel, class: 'button' }, label);
    };
    const nav = h('nav', { class: 'paging', 'aria-label': t('paging') });
    if (f.offset > 0) nav.append(pageLink(Math.max(0, f.offset - PAGE), t('prev'), 'prev'));
    if (f.offset + items.length < total) nav.append(pageLink(f.offset + PAGE, t('next'), 'next'));
    if (nav.childNodes.length) out.append(nav);
    return out;
}

// ---- one record ----

function isMasked(ctx, collection, key, v) {
    const f = ctx.catalog?.collections?.[collection]?.fields?.[key];
    if (f && 'personal' in f) return !!f.personal && typeof v === 'string' && v.includes('*');
    return typeof v === 'string' && /\*{3,}/.test(v);
}

export async function record(main, ctx, recordId) {
    const path = `/v1/review/records/${encodeURIComponent(recordId)}`;
    const [rec, hist, conf] = await Promise.all([
        get(path),
        get(`${path}/history`),
        get('/v1/review/conflicts?status=open'),
    ]);
    const out = document.createDocumentFragment();
    const title = collectionName(rec.collection, ctx.catalog);
    out.append(
        h('p', { class: 'crumbs' }, h('a', { href: '#/records' }, t('back_to_records'))),
        h('h1', {}, t('record_title', { collection: title })),
        h('p', { class: 'meta' }, `${ctx.nameOf(rec.township)} · ${ctx.nameOf(rec.village)} · ${t('created_by')}: ${rec.created_by || t('empty')} · ${t('updated')}: ${dateTime(rec.updated_ms)}`)
    );
    // fields
    const rows = Object.entries(rec.fields || {})
        .filter(([k]) => !k.startsWith('_'))
        .map(([k, v]) => {
            const label = fieldName(rec.collection, k, ctx.catalog);
            const ref = typeof v === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(v);
            const cell = h(
                'td',
                {},
                ref
                    ? h('a', { class: 'value', href: `#/record/${encodeURIComponent(v)}` }, v)
                    : h('span', { class: 'value' }, formatValue(ctx, rec.collection, k, v))
            );
            if (isMasked(ctx, rec.collection, k, v)) {
                const btn = h('button', { type: 'button', class: 'small reveal', 'aria-label': t('reveal_label', { field: label }) }, t('reveal'));
                btn.addEventListener('click', async () => {
                    btn.disabled = true;
                    try {
                        const r = await post(`${path}/reveal`, { field: k });
                        cell.querySelector('.value').textContent = String(r.value ?? '');
                        const note = h('span', { class: 'note' }, ` ${t('revealed')}`);
                        btn.replaceWith(note);
                        ctx.status(`${label}: ${t('revealed')}`);
                    } catch (e) {
                        btn.disabled = false;
                        ctx.fail(e);
                    }
                });
                cell.append(' ', btn);
            }
            return h('tr', {}, h('th', { scope: 'row' }, label), cell);
        });
    out.append(
        h('h2', {}, t('fields')),
        tableWrap(
            t('fields'),
            h(
                'table',
                { class: 'fields' },
                h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('field')), h('th', { scope: 'col' }, t('value')))),
                h('tbody', {}, rows)
            )
        )
    );
    // open conflicts of this record
    const mine = (conf.conflicts || []).filter((c) => c.record === rec.id);
    if (mine.length) {
        out.append(h('h2', {}, t('conflicts_title')));
        for (const c of mine) out.append(conflictCard(ctx, c, 3));
    }
    // review
    out.append(reviewForm(ctx, rec, path));
    // history
    const entries = hist.history || [];
    out.append(h('h2', {}, t('history')));
    if (!entries.length) out.append(h('p', {}, t('no_history')));
    else
        out.append(
            h(
                'ol',
                { class: 'history', reversed: true },
                [...entries].reverse().map((e) =>
                    h(
                        'li',
                        {},
                        h('p', { class: 'who' }, t('history_entry', { user: e.user, device: e.device, at: dateTime(e.at_ms) })),
                        h(
                            'ul',
                            {},
                            Object.entries(e.changes || {}).map(([k, pair]) =>
                                h(
                                    'li',
                                    {},
                                    h('span', { class: 'fname' }, `${fieldName(rec.collection, k, ctx.catalog)}: `),
                                    h('del', {}, formatValue(ctx, rec.collection, k, pair?.[0])),
                                    ' → ',
                                    h('ins', {}, formatValue(ctx, rec.collection, k, pair?.[1]))
                                )
                            )
                        )
                    )
                )
            )
        );
    return out;
}

function reviewForm(ctx, rec, path) {
    const name = id('review');
    const radio = (value, label) => {
        const input = h('input', { type: 'radio', name, value, id: id('r'), checked: (rec.review || 'received') === value });
        return h('div', { class: 'radio' }, input, h('label', { for: input.id }, label));
    };
    const errId = id('err');
    const comment = h('textarea', { name: 'comment', rows: 3 }, '');
    comment.value = rec.review === 'has_issues' ? rec.review_comment || '' : '';
    const err = h('p', { class: 'field-error', id: errId });
    const form = h(
        'form',
        { class: 'review', 'aria-labelledby': `${name}-h` },
        h('h2', { id: `${name}-h` }, t('review')),
        h('p', {}, t('current_review', { state: reviewName(rec.review) }), rec.review_comment ? h('span', {}, ` ${t('review_comment', { comment: rec.review_comment })}`) : null),
        h('fieldset', {}, h('legend', {}, t('review_state')), radio('has_issues', t('mark_has_issues')), radio('approved', t('mark_approved'))),
        field(t('comment'), comment),
        err,
        h('button', { type: 'submit', class: 'primary' }, t('submit'))
    );
    form.addEventListener('submit', async (e) => {
        e.preventDefault();
        const chosen = form.querySelector(`input[name="${name}"]:checked`)?.value;
        err.textContent = '';
        comment.removeAttribute('aria-invalid');
        if (!chosen || chosen === 'received') {
            form.querySelector(`input[name="${name}"]`).focus();
            return;
        }
        if (chosen === 'has_issues' && !comment.value.trim()) {
            err.textContent = t('comment_required');
            comment.setAttribute('aria-invalid', 'true');
            comment.setAttribute('aria-describedby', errId);
            comment.focus();
            return;
        }
        try {
            await post(`${path}/review`, { state: chosen, comment: comment.value.trim() });
            ctx.status(t('review_saved'));
            ctx.refresh();
        } catch (x) {
            ctx.fail(x);
        }
    });
    return form;
}

// ---- conflicts ----

export function conflictCard(ctx, c, level = 2) {
    const hx = `h${level}`;
    const side = (key, who) =>
        h(
            'div',
            { class: `side ${key}` },
            h(`h${level + 1}`, {}, t(key)),
            h('p', { class: 'big' }, formatValue(ctx, c.collection, c.field, who?.value)),
            h('p', { class: 'by' }, t('by_at', { user: who?.user ?? '', device: who?.device ?? '', at: dateTime(who?.at_ms) }))
        );
    const fname = fieldName(c.collection, c.field, ctx.catalog);
    const headingId = id('c');
    const entered = valueControl(ctx, c.collection, c.field, undefined, `${t('enter_value')}（${fname}）`);
    const card = h(
        'article',
        { class: 'conflict', 'aria-labelledby': headingId },
        h(hx, { id: headingId }, t('conflict_heading', { collection: collectionName(c.collection, ctx.catalog), field: fname })),
        h('p', { class: 'meta' }, ctx.nameOf(c.village), ' · ', h('a', { href: `#/record/${encodeURIComponent(c.record)}` }, `${t('record')} ${c.record}`)),
        h('div', { class: 'sides' }, side('winner', c.winner), side('loser', c.loser))
    );
    const resolve = async (body, btn) => {
        btn.disabled = true;
        try {
            await post(`/v1/review/conflicts/${c.id}/resolve`, body);
            ctx.status(t('resolved'));
            ctx.refresh();
        } catch (e) {
            btn.disabled = false;
            ctx.fail(e);
        }
    };
    const keep = h('button', { type: 'button', class: 'primary' }, t('keep_winner'));
    keep.addEventListener('click', () => resolve({ choice: 'winner' }, keep));
    const other = h('button', { type: 'button' }, t('use_loser'));
    other.addEventListener('click', () => resolve({ choice: 'loser' }, other));
    const useValue = h('button', { type: 'submit' }, t('use_value'));
    const box = entered.control.matches('fieldset') ? entered.control : field(`${t('enter_value')}（${fname}）`, entered.control);
    const form = h('form', { class: 'inline' }, box, useValue);
    form.addEventListener('submit', (e) => {
        e.preventDefault();
        let value;
        try {
            value = entered.read();
        } catch {
            value = undefined;
        }
        if (value === undefined) {
            focusControl(entered);
            return;
        }
        resolve({ choice: 'value', value }, useValue);
    });
    card.append(h('div', { class: 'actions' }, keep, other), form);
    return card;
}

export async function conflicts(main, ctx) {
    const data = await get('/v1/review/conflicts?status=open');
    const list = data.conflicts || [];
    ctx.rememberNames(list.map((c) => [c.township, c.township_name]));
    const out = document.createDocumentFragment();
    out.append(h('h1', {}, t('conflicts_title')));
    if (!list.length) out.append(h('p', { class: 'empty' }, t('no_conflicts')));
    for (const c of list) out.append(conflictCard(ctx, c, 2));
    return out;
}

// ---- quarantine ----

export async function quarantine(main, ctx) {
    const data = await get('/v1/review/quarantine?status=open');
    const list = data.quarantine || [];
    const out = document.createDocumentFragment();
    out.append(h('h1', {}, t('quarantine_title')));
    if (!list.length) {
        out.append(h('p', { class: 'empty' }, t('no_quarantine')));
        return out;
    }
    const region = dataTable(
        t('quarantine_title'),
        [t('received'), t('user'), t('collection'), t('field'), t('reason'), t('action')],
        list.map((q) =>
            h(
                'tr',
                {},
                h('td', {}, dateTime(q.received_ms)),
                h('td', {}, q.user),
                h('td', {}, collectionName(q.collection, ctx.catalog)),
                h('td', {}, q.field ? fieldName(q.collection, q.field, ctx.catalog) : t('empty')),
                h('td', {}, reasonText(q), h('span', { class: 'code' }, ` (${q.code})`)),
                h('td', {}, h('a', { href: `#/quarantine/${q.id}`, 'aria-label': t('repair_entry', { user: q.user, at: dateTime(q.received_ms) }) }, t('repair')))
            )
        )
    );
    out.append(region);
    return out;
}

function reasonText(q) {
    return currentLang() === 'en' ? q.message_en || q.message : q.message;
}

// A control for a value of `name`, typed by the catalog (choices by name, checkboxes, yes/no,
// numbers, dates, villages by name; JSON for what has no better form), starting at `sent`.
// read() gives the value now in it, or undefined while it is as it started; it throws on input
// the control cannot make a value of (RangeError, or SyntaxError for JSON).
function valueControl(ctx, collection, name, sent, label) {
    const f = ctx.catalog?.collections?.[collection]?.fields?.[name] ?? { type: 'json' };
    let control;
    let read;
    let json = false;
    if (f.type === 'enum') {
        const values = [...(f.values || [])];
        const unknown = typeof sent === 'string' && sent !== '' && !values.includes(sent); // shown as sent
        if (unknown) values.unshift(sent);
        control = h('select', {}, h('option', { value: '' }, t('empty')), ...values.map((v) => h('option', { value: v, selected: v === sent }, unknown && v === sent ? t('repair_unknown_value', { value: v }) : valueName(collection, name, v, ctx.catalog))));
        read = () => (control.value === (sent ?? '') ? undefined : control.value || null);
    } else if (f.type === 'enum_set') {
        const chosen = new Set(Array.isArray(sent) ? sent : []);
        const boxes = (f.values || []).map((v) => {
            const box = h('input', { type: 'checkbox', value: v, id: id('q'), checked: chosen.has(v) });
            return h('div', { class: 'check' }, box, h('label', { for: box.id }, valueName(collection, name, v, ctx.catalog)));
        });
        const legendId = id('l');
        control = h('fieldset', { 'aria-labelledby': legendId }, h('legend', { id: legendId }, label), ...boxes);
        read = () => {
            const now = [...control.querySelectorAll('input:checked')].map((b) => b.value);
            const same = now.length === chosen.size && now.every((v) => chosen.has(v));
            return same ? undefined : now;
        };
    } else if (f.type === 'boolean') {
        const cur = sent === true ? 'true' : sent === false ? 'false' : '';
        control = h('select', {}, h('option', { value: '' }, t('empty')), h('option', { value: 'true', selected: cur === 'true' }, t('yes')), h('option', { value: 'false', selected: cur === 'false' }, t('no')));
        read = () => (control.value === cur ? undefined : control.value === '' ? null : control.value === 'true');
    } else if (f.type === 'integer' || f.type === 'number') {
        // A value the box cannot hold (text sent for a number) is its placeholder: left empty, it
        // stays as sent.
        const holds = sent === null || sent === undefined || typeof sent === 'number';
        control = h('input', { type: 'number', step: f.type === 'integer' ? '1' : 'any', value: holds ? sent ?? '' : '', placeholder: holds ? '' : String(sent) });
        read = () => {
            if (control.validity.badInput) throw new RangeError('not a number');
            const text = control.value.trim();
            if (holds ? text === String(sent ?? '') : text === '') return undefined;
            return text === '' ? null : Number(text);
        };
    } else if (f.type === 'division' && typeof sent === 'string' && /^\d{9}(\d{3})?$/.test(sent)) {
        // the divisions of the same level (a village: of the same township), by name
        const peers = [...ctx.names.keys()].filter((c) => c.length === sent.length && c.startsWith(sent.slice(0, 9 - (12 - sent.length))));
        if (!peers.includes(sent)) peers.unshift(sent);
        control = h('select', {}, ...peers.map((c) => h('option', { value: c, selected: c === sent }, `${ctx.nameOf(c)}（${c}）`)));
        read = () => (control.value === sent ? undefined : control.value);
    } else if (f.type === 'date' && (sent === null || sent === undefined || /^\d{4}-\d{2}-\d{2}$/.test(sent))) {
        control = h('input', { type: 'date', value: sent ?? '' });
        read = () => {
            if (control.validity.badInput) throw new RangeError('not a date');
            return control.value === (sent ?? '') ? undefined : control.value || null;
        };
    } else if (f.type === 'geo' || f.type === 'json' || (sent !== null && sent !== undefined && typeof sent !== 'string')) {
        const text = sent === undefined ? '' : JSON.stringify(sent);
        control = h('textarea', { rows: 2, spellcheck: 'false' });
        control.value = text;
        json = true;
        read = () => {
            if (control.value.trim() === text) return undefined;
            if (control.value.trim() === '') return null;
            return JSON.parse(control.value); // a SyntaxError is shown as the field's error
        };
    } else {
        // Text with line breaks (visit notes) in a box that keeps them: a one-line input drops
        // them, and the unchanged notes would be sent back without.
        const long = typeof sent === 'string' && (sent.includes('\n') || sent.length > 60);
        control = long ? h('textarea', { rows: 4 }) : h('input', { type: 'text', value: sent ?? '' });
        if (long) control.value = sent;
        read = () => (control.value === (sent ?? '') ? undefined : control.value === '' ? null : control.value);
    }
    return { control, read, json };
}

// One control per field the submission carried (and the field it was rejected for), typed by
// the catalog. Personal numbers arrive masked: their box starts empty and "empty" means "as
// sent". Returns { row, control, read, name }.
function repairControl(ctx, q, name, sent) {
    const f = ctx.catalog?.collections?.[q.collection]?.fields?.[name] ?? { type: 'json' };
    const label = fieldName(q.collection, name, ctx.catalog);
    const hint = [];
    if (name === q.field) hint.push(reasonText(q));
    let control;
    let read; // -> the value now in the control, or undefined when unchanged
    if (f.personal) {
        control = h('input', { type: 'text', autocomplete: 'off', placeholder: String(sent ?? '') });
        hint.push(t('repair_masked'));
        read = () => (control.value.trim() === '' ? undefined : control.value.trim());
    } else {
        const v = valueControl(ctx, q.collection, name, sent, label);
        ({ control, read } = v);
        if (v.json) hint.push(t('repair_json'));
    }
    control.dataset.field = name;
    if (name === q.field) control.setAttribute('aria-invalid', 'true');
    let row;
    if (f.type === 'enum_set') {
        const hintId = id('h');
        if (hint.length) control.setAttribute('aria-describedby', hintId);
        row = h('div', { class: 'field' }, control, hint.length ? h('p', { class: 'hint', id: hintId }, hint.join(' ')) : null);
    } else row = field(label, control, hint.join(' ') || undefined);
    return { row, control, read, name };
}

function focusControl(c) {
    if (!c) return;
    (c.control.matches('fieldset') ? c.control.querySelector('input') : c.control)?.focus();
}

export async function quarantineEntry(main, ctx, qid) {
    const data = await get('/v1/review/quarantine?status=open');
    const q = (data.quarantine || []).find((e) => String(e.id) === qid);
    const out = document.createDocumentFragment();
    if (!q) {
        out.append(h('h1', {}, t('repair_gone')), h('p', {}, h('a', { href: '#/quarantine' }, t('nav_quarantine'))));
        return out;
    }
    const sent = {};
    for (const [k, w] of Object.entries(q.payload?.fields || {})) if (!k.startsWith('_') && w && typeof w === 'object' && 'value' in w) sent[k] = w.value;
    const declared = Object.keys(ctx.catalog?.collections?.[q.collection]?.fields || {});
    const names = declared.filter((k) => k in sent || k === q.field);
    for (const k of Object.keys(sent)) if (!names.includes(k)) names.push(k); // fields this server does not declare
    out.append(
        h('h1', {}, t('repair_title', { collection: collectionName(q.collection, ctx.catalog) })),
        h('p', { class: 'meta' }, t('repair_meta', { user: q.user, device: q.device, at: dateTime(q.received_ms) })),
        h('div', { class: 'error-box', role: 'note' }, h('p', {}, t('reason'), '：', reasonText(q), h('span', { class: 'code' }, ` (${q.code})`)))
    );
    const controls = names.map((k) => repairControl(ctx, q, k, sent[k]));
    const errId = id('err');
    const err = h('p', { class: 'field-error', id: errId, role: 'alert' });
    const send = h('button', { type: 'submit', class: 'primary' }, t('resubmit'));
    const form = h('form', { class: 'repair', 'aria-describedby': errId }, ...controls.map((c) => c.row), err, send);
    form.addEventListener('submit', async (e) => {
        e.preventDefault();
        err.textContent = '';
        const fields = {};
        for (const c of controls) {
            let v;
            try {
                v = c.read();
            } catch (x) {
                err.textContent = t(x instanceof RangeError ? 'repair_bad_input' : 'repair_bad_json', { field: fieldName(q.collection, c.name, ctx.catalog) });
                focusControl(c);
                return;
            }
            if (v !== undefined) fields[c.name] = v;
        }
        if (!Object.keys(fields).length) {
            err.textContent = t('repair_nothing');
            focusControl(controls.find((c) => c.name === q.field) ?? controls[0]);
            return;
        }
        send.disabled = true;
        try {
            await post(`/v1/review/quarantine/${q.id}/resubmit`, { fields });
            ctx.status(t('resubmitted'));
            location.hash = '#/quarantine';
        } catch (x) {
            send.disabled = false;
            if (x instanceof ApiError && x.status === 422) {
                err.textContent = t('invalid_value', { message: (currentLang() === 'zh' && x.detail.message_zh) || x.message });
                const wrong = controls.find((c) => c.name === x.detail.field);
                if (wrong) {
                    for (const c of controls) c.control.removeAttribute('aria-invalid');
                    wrong.control.setAttribute('aria-invalid', 'true');
                    focusControl(wrong);
                }
            } else ctx.fail(x);
        }
    });
    out.append(form);

    const reason = h('textarea', { name: 'reason', rows: 2 });
    const dismissErr = h('p', { class: 'field-error', role: 'alert' });
    const dismiss = h('button', { type: 'submit' }, t('dismiss'));
    const dismissForm = h('form', { class: 'dismiss' }, h('h2', {}, t('dismiss_title')), field(t('dismiss_reason'), reason, t('dismiss_hint')), dismissErr, dismiss);
    dismissForm.addEventListener('submit', async (e) => {
        e.preventDefault();
        dismissErr.textContent = '';
        if (!reason.value.trim()) {
            dismissErr.textContent = t('dismiss_reason_required');
            reason.setAttribute('aria-invalid', 'true');
            reason.focus();
            return;
        }
        dismiss.disabled = true;
        try {
            await post(`/v1/review/quarantine/${q.id}/dismiss`, { reason: reason.value.trim() });
            ctx.status(t('dismissed'));
            location.hash = '#/quarantine';
        } catch (x) {
            dismiss.disabled = false;
            ctx.fail(x);
        }
    });
    out.append(dismissForm);
    return out;
}
