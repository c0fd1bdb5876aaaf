// Time-series charts as plain SVG elements: the overview's sparklines and a function's
// chart of rate, replicas and latency with the autoscaler's changes marked. Everything is
// built with DOM calls and textContent, never markup, and styled by class from
// style.css, so the page's policy (no inline style, no inline code) holds.

// The SVG namespace: a name, which nothing ever fetches.
const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c !== null && c !== undefined) e.append(c);
  }
  return e;
}

// niceMax rounds up to 1, 2 or 5 times a power of ten, so an axis reads 20 or 50, not 37.
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) {
    if (v <= m * p) return m * p;
  }
  return 10 * p;
}

// path draws points [t, v] (v null: a gap) as a line, a step line (each value holds
// until the next point) or the area under either.
function path(points, kind, sx, sy, bottom) {
  let d = '';
  let open = false;
  let first = 0;
  let lastX = 0;
  const step = kind === 'step' || kind === 'steparea';
  const area = kind === 'area' || kind === 'steparea';
  const close = () => {
    if (open && area) d += `L${lastX.toFixed(1)},${bottom.toFixed(1)}L${first.toFixed(1)},${bottom.toFixed(1)}Z`;
    open = false;
  };
  for (let i = 0; i < points.length; i++) {
    const [t, v] = points[i];
    if (v === null || v === undefined || Number.isNaN(v)) {
      close();
      continue;
    }
    const x = sx(t);
    const y = sy(v);
    if (!open) {
      d += `M${x.toFixed(1)},${y.toFixed(1)}`;
      first = x;
      open = true;
    } else if (step) {
      d += `H${x.toFixed(1)}V${y.toFixed(1)}`;
    } else {
      d += `L${x.toFixed(1)},${y.toFixed(1)}`;
    }
    lastX = x;
    if (step && (i === points.length - 1 || points[i + 1][1] === null || points[i + 1][1] === undefined)) {
      // The last value holds for one more interval, up to now.
      const end = i === points.length - 1 ? sx.end : sx(points[i + 1][0]);
      d += `H${end.toFixed(1)}`;
      lastX = end;
    }
  }
  close();
  return d;
}

function scaleX(t0, t1, x0, x1) {
  const f = (t) => x0 + ((t - t0) / Math.max(t1 - t0, 1)) * (x1 - x0);
  f.end = x1;
  return f;
}

function scaleY(max, y0, y1) {
  return (v) => y1 - (Math.min(v, max) / max) * (y1 - y0);
}

// logScaleY spreads [min, max] by orders of magnitude: a p50 of 2 ms stays readable under
// a p99 of 200 ms. Values at or below min sit on the axis.
function logScaleY(min, max, y0, y1) {
  const span = Math.log(max / min);
  return (v) => y1 - (Math.max(0, Math.log(Math.min(Math.max(v, min), max) / min)) / span) * (y1 - y0);
}

// seriesAttrs describes a drawn series for whoever reads the page without eyes, the
// tests included: its last value and its highest in the window.
function seriesAttrs(points, cls) {
  let last = null;
  let peak = null;
  for (const [, v] of points) {
    if (v === null || v === undefined) continue;
    last = v;
    peak = peak === null ? v : Math.max(peak, v);
  }
  return { class: cls, 'data-last': last ?? '', 'data-max': peak ?? '' };
}

// sparkline redraws an <svg> of width × height with series {points, kind, cls} over the
// time window [t0, t1] and the value range [0, max].
export function sparkline(el, { width, height, t0, t1, max, series, label }) {
  el.setAttribute('viewBox', `0 0 ${width} ${height}`);
  el.setAttribute('width', width);
  el.setAttribute('height', height);
  el.setAttribute('role', 'img');
  if (label) el.setAttribute('aria-label', label);
  const sx = scaleX(t0, t1, 0, width);
  const sy = scaleY(max, 2, height - 1);
  el.replaceChildren(...series.map((s) => svg('path', { d: path(s.points, s.kind, sx, sy, height - 1), ...seriesAttrs(s.points, s.cls) })));
}

// The kinds of change, as the chart marks them.
export function changeKind(c) {
  if (c.reason === 'wake') return 'wake';
  if (c.reason === 'external') return 'manual';
  if (c.to === 0) return 'zero';
  return c.to > c.from ? 'up' : 'down';
}

export function changeLabel(c) {
  switch (changeKind(c)) {
    case 'wake':
      return `wake → ${c.to}`;
    case 'manual':
      return `set ${c.to}`;
    case 'zero':
      return '↓0';
    case 'up':
      return `↑${c.to}`;
    default:
      return `↓${c.to}`;
  }
}

const MARGIN = { left: 64, right: 14, top: 22, bottom: 22 };
const PANEL_GAP = 26;

// chart redraws a function's chart into el: one panel per entry of panels, stacked over
// the same time window, with changes marked across all of them. It returns a function
// that maps a position over the chart to the nearest sample, for a readout.
export function chart(el, { width, t0, t1, samples, changes, panels, formatTime }) {
  const plotW = width - MARGIN.left - MARGIN.right;
  let height = MARGIN.top;
  const layout = panels.map((p) => {
    const top = height;
    height += p.height + PANEL_GAP;
    return { ...p, top, bottom: top + p.height };
  });
  height += MARGIN.bottom - PANEL_GAP;
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, class: 'chart-svg', role: 'img',
    'aria-label': panels.map((p) => p.title).join(', ') + ' over time' });
  const sx = scaleX(t0, t1, MARGIN.left, MARGIN.left + plotW);
  const visible = samples.filter((s) => s.time >= t0 - 2000);

  for (const p of layout) {
    let peak = 0;
    for (const s of visible) {
      for (const k of p.series) {
        const v = s[k.key];
        if (typeof v === 'number') peak = Math.max(peak, v);
      }
    }
    const max = p.integer ? Math.max(Math.ceil(peak), p.min || 1) : niceMax(Math.max(peak, p.min || 0));
    // A log panel spans three orders of magnitude below its top, or down to its floor.
    const low = p.log ? Math.max(p.log, max / 1000) : 0;
    const sy = p.log ? logScaleY(low, max, p.top, p.bottom) : scaleY(max, p.top, p.bottom);
    const mid = p.log ? Math.sqrt(low * max) : max / 2;
    const g = svg('g', { class: 'panel-' + p.id });
    g.append(
      svg('rect', { x: MARGIN.left, y: p.top, width: plotW, height: p.height, class: 'plot' }),
      svg('line', { x1: MARGIN.left, x2: MARGIN.left + plotW, y1: sy(mid), y2: sy(mid), class: 'grid' }),
      svg('text', { x: MARGIN.left, y: p.top - 6, class: 'panel-title' }, p.title),
      svg('text', { x: MARGIN.left - 6, y: p.top + 10, class: 'axis y', 'text-anchor': 'end' }, p.format(max)),
      svg('text', { x: MARGIN.left - 6, y: sy(mid) + 4, class: 'axis y', 'text-anchor': 'end' }, p.format(mid)),
      svg('text', { x: MARGIN.left - 6, y: p.bottom, class: 'axis y', 'text-anchor': 'end' }, p.format(low)),
    );
    for (const k of p.series) {
      const points = visible.map((s) => [s.time, typeof s[k.key] === 'number' ? s[k.key] : k.gaps ? null : 0]);
      g.append(svg('path', { d: path(points, k.kind, sx, sy, p.bottom), ...seriesAttrs(points, 's-' + k.key) }));
    }
    // The legend, after the title; the right end above the plot is for the markers.
    let lx = MARGIN.left + p.title.length * 7 + 14;
    for (const k of p.series) {
      g.append(svg('text', { x: lx, y: p.top - 6, class: 'legend l-' + k.key }, k.label));
      lx += k.label.length * 7 + 14;
    }
    root.append(g);
  }

  // Time axis under the last panel: a few clock times.
  const axisY = height - 6;
  const ticks = 5;
  for (let i = 0; i <= ticks; i++) {
    const t = t0 + ((t1 - t0) * i) / ticks;
    const anchor = i === 0 ? 'start' : i === ticks ? 'end' : 'middle';
    root.append(svg('text', { x: sx(t), y: axisY, class: 'axis x', 'text-anchor': anchor }, formatTime(t)));
  }

  // Changes: a line across every panel and a label above the first.
  const top = layout[0].top;
  const bottom = layout[layout.length - 1].bottom;
  // Labels of changes close together go one under the other rather than over each other.
  let lastLabelX = -Infinity;
  let row = 0;
  for (const c of changes) {
    if (c.time < t0 || c.time > t1 + 2000) continue;
    const x = sx(c.time);
    row = x - lastLabelX < 34 ? (row + 1) % 4 : 0;
    lastLabelX = x;
    const kind = changeKind(c);
    const m = svg('g', { class: `marker marker-${kind}`, 'data-reason': c.reason, 'data-to': c.to },
      svg('title', {}, `${formatTime(c.time)}: ${c.from} → ${c.to} (${c.reason})`),
      svg('line', { x1: x, x2: x, y1: top, y2: bottom }),
      svg('text', { x: x + 3, y: top + 11 + row * 11 }, changeLabel(c)));
    root.append(m);
  }

  const cursor = svg('line', { class: 'cursor', y1: top, y2: bottom, x1: -10, x2: -10 });
  root.append(cursor);
  el.replaceChildren(root);

  // nearest finds the sample under a horizontal position in client coordinates.
  return (clientX) => {
    const box = root.getBoundingClientRect();
    const x = ((clientX - box.left) / box.width) * width;
    if (x < MARGIN.left || x > MARGIN.left + plotW || visible.length === 0) {
      cursor.setAttribute('x1', -10);
      cursor.setAttribute('x2', -10);
      return null;
    }
    const t = t0 + ((x - MARGIN.left) / plotW) * (t1 - t0);
    let best = visible[0];
    for (const s of visible) {
      if (Math.abs(s.time - t) < Math.abs(best.time - t)) best = s;
    }
    const bx = sx(best.time);
    cursor.setAttribute('x1', bx);
    cursor.setAttribute('x2', bx);
    return best;
  };
}
