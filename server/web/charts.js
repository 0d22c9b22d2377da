// Hand-written SVG charts. Each chart is an <svg role="img"> with a <title> and <desc>; the
// numbers it draws are also in a table on the same page for screen readers and keyboards.
import { s, id } from './dom.js';

// Horizontal bars: rows [{label, value (0..1), text}], one per township.
export function barChart({ title, desc, rows }) {
    const rowH = 22;
    const labelW = 150;
    const barW = 420;
    const textW = 70;
    const top = 24;
    const width = labelW + barW + textW;
    const height = top + rows.length * rowH + 8;
    const svg = chartSvg(width, height, title, desc, { preserveAspectRatio: 'xMinYMin meet' });
    // grid lines at 0, 25, 50, 75, 100 %
    for (let i = 0; i <= 4; i++) {
        const x = labelW + (barW * i) / 4;
        svg.append(
            s('line', { x1: x, x2: x, y1: top - 6, y2: height - 4, class: 'grid' }),
            s('text', { x, y: top - 10, class: 'axis', 'text-anchor': 'middle' }, `${i * 25}%`)
        );
    }
    rows.forEach((r, i) => {
        const y = top + i * rowH;
        const w = Math.max(0, Math.min(1, r.value || 0)) * barW;
        svg.append(
            s('text', { x: labelW - 8, y: y + 15, class: 'label', 'text-anchor': 'end' }, r.label),
            s('rect', { x: labelW, y: y + 3, width: w, height: rowH - 8, class: 'bar', rx: 2 }),
            s('text', { x: labelW + barW + 6, y: y + 15, class: 'value' }, r.text)
        );
    });
    return svg;
}

// Lines: months ['2026-01', …], series [{name, values: [n…], cls}], xLabel(month) → text.
export function lineChart({ title, desc, months, series, xLabel, yFormat }) {
    const width = 640;
    const height = 260;
    const left = 56;
    const right = 16;
    const top = 16;
    const bottom = 56;
    const plotW = width - left - right;
    const plotH = height - top - bottom;
    const max = Math.max(1, ...series.flatMap((x) => x.values));
    const step = niceStep(max / 4);
    const yMax = Math.ceil(max / step) * step;
    const x = (i) => left + (months.length <= 1 ? plotW / 2 : (plotW * i) / (months.length - 1));
    const y = (v) => top + plotH - (plotH * v) / yMax;
    const svg = chartSvg(width, height, title, desc);
    for (let v = 0; v <= yMax; v += step) {
        svg.append(
            s('line', { x1: left, x2: width - right, y1: y(v), y2: y(v), class: 'grid' }),
            s('text', { x: left - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, yFormat(v))
        );
    }
    months.forEach((m, i) => {
        svg.append(
            s('text', { x: x(i), y: top + plotH + 18, class: 'axis', 'text-anchor': 'middle' }, xLabel(m))
        );
    });
    series.forEach((ser, k) => {
        const pts = ser.values.map((v, i) => `${x(i)},${y(v)}`).join(' ');
        svg.append(s('polyline', { points: pts, class: `line ${ser.cls}` }));
        ser.values.forEach((v, i) => {
            svg.append(s('circle', { cx: x(i), cy: y(v), r: 3.5, class: `dot ${ser.cls}` }));
        });
        // legend
        const lx = left + k * 180;
        const ly = height - 14;
        svg.append(
            s('line', { x1: lx, x2: lx + 24, y1: ly - 4, y2: ly - 4, class: `line ${ser.cls}` }),
            s('text', { x: lx + 30, y: ly, class: 'label' }, ser.name)
        );
    });
    return svg;
}

// The chart's <svg role="img">, labelled by its <title> and <desc>.
function chartSvg(width, height, title, desc, attrs = {}) {
    const tid = id('t');
    const did = id('d');
    const svg = s('svg', {
        class: 'chart',
        viewBox: `0 0 ${width} ${height}`,
        role: 'img',
        'aria-labelledby': `${tid} ${did}`,
        ...attrs,
    });
    svg.append(s('title', { id: tid }, title), s('desc', { id: did }, desc));
    return svg;
}

function niceStep(raw) {
    const p = 10 ** Math.floor(Math.log10(Math.max(raw, 1)));
    for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
    return 10 * p;
}
