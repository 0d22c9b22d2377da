// The page's only door to the server: same-origin fetches with the session cookie, the CSRF
// header on every change, a timeout, and errors as ApiError values the views can explain.

const TIMEOUT_MS = 20000;
let csrfToken = '';

export function setCsrf(token) {
    csrfToken = token || '';
}

// kind: 'offline' (no answer), 'timeout', 'session' (401 on a logged-in call), 'http' (any other
// error answer, with status and the server's error code).
export class ApiError extends Error {
    constructor(kind, status, code, message, detail) {
        super(message || code || kind);
        this.kind = kind;
        this.status = status;
        this.code = code;
        this.detail = detail || {}; // the answer's "error" object (422: message_zh, field)
    }
}

export async function request(method, path, body, { timeout = TIMEOUT_MS } = {}) {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), timeout);
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
    let res;
    try {
        res = await fetch(path, {
            method,
            headers,
            body: body === undefined ? undefined : JSON.stringify(body),
            credentials: 'same-origin',
            cache: 'no-store',
            signal: ctrl.signal,
        });
    } catch (e) {
        throw new ApiError(e?.name === 'AbortError' ? 'timeout' : 'offline', 0, '', String(e));
    } finally {
        clearTimeout(timer);
    }
    let data = null;
    const text = await res.text().catch(() => '');
    if (text) {
        try {
            data = JSON.parse(text);
        } catch {
            data = null;
        }
    }
    if (!res.ok) {
        const code = data?.error?.code || '';
        const kind = res.status === 401 && path !== '/v1/session' ? 'session' : 'http';
        throw new ApiError(kind, res.status, code, data?.error?.message || res.statusText, data?.error);
    }
    return data ?? {};
}

export const get = (path) => request('GET', path);
export const post = (path, body = {}) => request('POST', path, body);

export function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== '' && v != null) q.set(k, v);
    const s = q.toString();
    return s ? `?${s}` : '';
}
