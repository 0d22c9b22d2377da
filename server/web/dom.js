// Building DOM without innerHTML: every server value becomes a text node, never markup.

export function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
}

function setAttrs(el, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'class') el.setAttribute('class', v);
        else if (k === 'value' && 'value' in el) el.value = v;
        else el.setAttribute(k, v === true ? '' : String(v));
    }
}

function append(el, children) {
    for (const c of children.flat(Infinity)) {
        if (c === null || c === undefined || c === false) continue;
        el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
}

export function clear(el) {
    while (el.firstChild) el.firstChild.remove();
}

let uid = 0;
export function id(prefix = 'f') {
    uid += 1;
    return `${prefix}-${uid}`;
}

// A labelled form control: <div class="field"><label for>…</label><control id></div>
export function field(labelText, control, hint) {
    const cid = control.id || id('c');
    control.id = cid;
    const parts = [h('label', { for: cid }, labelText), control];
    if (hint) {
        const hid = id('h');
        control.setAttribute('aria-describedby', hid);
        parts.push(h('p', { class: 'hint', id: hid }, hint));
    }
    return h('div', { class: 'field' }, parts);
}

// An accessible confirmation with <dialog>: resolves true on confirm, false on cancel/Escape.
export function confirmDialog(message, confirmText, cancelText) {
    return new Promise((resolve) => {
        const msgId = id('dlg');
        const ok = h('button', { type: 'button', class: 'danger' }, confirmText);
        const cancel = h('button', { type: 'button' }, cancelText);
        const dlg = h(
            'dialog',
            { 'aria-describedby': msgId, 'aria-labelledby': msgId },
            h('p', { id: msgId }, message),
            h('div', { class: 'actions' }, ok, cancel)
        );
        const done = (v) => {
            dlg.close();
            dlg.remove();
            resolve(v);
        };
        ok.addEventListener('click', () => done(true));
        cancel.addEventListener('click', () => done(false));
        dlg.addEventListener('cancel', (e) => {
            e.preventDefault();
            done(false);
        });
        document.body.append(dlg);
        dlg.showModal();
        cancel.focus();
    });
}
