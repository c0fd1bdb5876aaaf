// The faasd web UI: a client of the OpenFaaS /system API, like faas-cli, plus faasd's
// GET /system/history for the autoscaler's samples. It renders only through textContent
// and DOM nodes, never through HTML strings, because function metadata, log lines and
// error messages are whatever their authors wrote.
import { sparkline, svg, chart, changeKind, changeLabel, niceMax } from './chart.js';

const REFRESH_MS = 1000;
const LOG_TAIL = 100;
const MAX_LOG_LINES = 1000;
const MAX_BODY_CHARS = 256 * 1024;
// The page keeps what the daemon keeps, 600 ticks (ten minutes at the default interval);
// the overview's sparklines show the last half of it.
const HISTORY_TICKS = 600;
const SPARK_TICKS = 300;
const SPARK = { width: 120, height: 26 };
// Environment variables whose names say they hold a secret are masked until clicked.
const SECRET_ENV = /PASSWORD|TOKEN|KEY|SECRET/i;

const state = {
  loaded: false,
  functions: new Map(), // name -> FunctionStatus, as last listed
  rows: new Map(), // name -> the overview's row and its cells
  queued: new Map(), // name -> QueueFunction of /system/info: asynchronous calls
  history: new Map(), // name -> {samples, changes}, oldest first
  seq: 0, // the last tick the history covers, sent back as since
  interval: 1, // seconds between two samples
  now: 0, // the daemon's clock: the time of the newest sample, in ms
  selected: null,
  pendingSelect: null, // asked for by the address before the list arrived
  detailKey: '',
  revealed: new Set(), // environment variables of the selected function shown in clear
  logInstances: new Set(), // replicas seen in the selected function's logs
  follow: null, // AbortController of the log stream being followed
  nearest: null, // maps a pointer position over the chart to a sample
  pointerX: null,
  secrets: [], // names
  secretsLoaded: false,
};

const $ = (id) => document.getElementById(id);

// el builds an element; string children become text nodes, never markup.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c !== null && c !== undefined) e.append(c);
  }
  return e;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function show(node, visible) {
  node.hidden = !visible;
}

// URLs are built on location.origin rather than on the page's address: a page opened
// with user:password@ in its address would lend those credentials to every relative URL,
// and fetch refuses a URL that carries credentials.
function url(path) {
  return new URL(path, location.origin);
}

// API_HEADER goes with every /system call. The gateway refuses browser requests to /system
// without it: a page of another origin cannot send it without a CORS preflight, which the
// gateway never grants. Its name is api.UIHeader in the Go code.
const API_HEADER = 'X-Faasd-Ui';

class APIError extends Error {
  constructor(method, path, status, text) {
    super(`${method} ${path}: ${status} ${text}`.trim());
    this.status = status;
  }
}

// api calls the /system API. Same origin, so the browser adds the basic-auth credentials
// it was given for /ui/ (it answers the API's 401 challenge from its cache).
async function api(method, path, body, signal) {
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers: { [API_HEADER]: '1' }, signal };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url(path), init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new APIError(method, path, '', `cannot reach faasd (${err.message})`);
  }
  if (!res.ok) {
    let text = (await res.text()).trim();
    if (res.status === 401) text += ' (reload the page to log in again)';
    throw new APIError(method, path, res.status, text);
  }
  return res;
}

function showError(node, err) {
  if (err) {
    setText(node, err.message || String(err));
    show(node, true);
  } else {
    show(node, false);
  }
}

function result(node, text, cls) {
  setText(node, text);
  node.className = cls || '';
}

// ---- formatting ----

function fmtRate(v) {
  if (typeof v !== 'number') return '—';
  if (v === 0) return '0';
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function fmtSeconds(s) {
  if (typeof s !== 'number' || !(s > 0)) return '—';
  if (s < 1e-3) return `${Math.round(s * 1e6)} µs`;
  if (s < 1e-2) return `${(s * 1e3).toFixed(1)} ms`;
  if (s < 1) return `${Math.round(s * 1e3)} ms`;
  return `${s.toFixed(2)} s`;
}

function fmtBytes(b) {
  if (typeof b !== 'number') return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) {
    b /= 1024;
    i++;
  }
  return `${b >= 10 || i === 0 ? Math.round(b) : b.toFixed(1)} ${units[i]}`;
}

function fmtCPU(millicores) {
  return typeof millicores === 'number' ? `${Math.round(millicores)}m` : '—';
}

function fmtUptime(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

function fmtClock(t) {
  const d = new Date(t);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

// ---- the autoscaler's history ----

function historyOf(name) {
  return state.history.get(name) || { samples: [], changes: [] };
}

// merge takes in an answer of GET /system/history?since=: what is new for every
// function. A seq that went back means the daemon restarted: it sent all it has.
function mergeHistory(list) {
  let seq = 0;
  for (const h of list) seq = Math.max(seq, h.seq);
  if (seq < state.seq) state.history.clear();
  const names = new Set();
  for (const h of list) {
    names.add(h.name);
    let rec = state.history.get(h.name);
    if (!rec) {
      rec = { samples: [], changes: [] };
      state.history.set(h.name, rec);
    }
    const lastSeq = rec.samples.length ? rec.samples[rec.samples.length - 1].seq : 0;
    for (const s of h.samples) if (s.seq > lastSeq) rec.samples.push(s);
    const lastChange = rec.changes.length ? rec.changes[rec.changes.length - 1].seq : 0;
    for (const c of h.changes) if (c.seq > lastChange) rec.changes.push(c);
    if (h.interval > 0) state.interval = h.interval;
    if (rec.samples.length) state.now = Math.max(state.now, rec.samples[rec.samples.length - 1].time);
  }
  const keep = state.now - HISTORY_TICKS * state.interval * 1000 - 5000;
  for (const [name, rec] of state.history) {
    if (!names.has(name)) {
      state.history.delete(name);
      continue;
    }
    const i = rec.samples.findIndex((s) => s.time >= keep);
    if (i > 0) rec.samples.splice(0, i);
    if (i < 0) rec.samples.length = 0;
    const j = rec.changes.findIndex((c) => c.time >= keep);
    if (j > 0) rec.changes.splice(0, j);
  }
  state.seq = seq;
}

function lastSample(name) {
  const s = historyOf(name).samples;
  return s.length ? s[s.length - 1] : null;
}

// latestLatency is the latency of the newest of the last few ticks that had requests:
// a quiet second should not blank what the last busy one measured.
function latestLatency(name) {
  const s = historyOf(name).samples;
  for (let i = s.length - 1; i >= Math.max(0, s.length - 5); i--) {
    if (s[i].p50) return s[i];
  }
  return null;
}

function latencyText(name) {
  const s = latestLatency(name);
  return s ? `${fmtSeconds(s.p50)} / ${fmtSeconds(s.p99)}` : '—';
}

// ---- the table of functions ----

function statusOf(fn) {
  return fn.status || 'unknown';
}

function runsOf(fn) {
  if (fn.envProcess) return fn.envProcess;
  if (fn.command && fn.command.length) return fn.command.map(quoteArg).join(' ');
  return '';
}

// quoteArg shows argv as one could type it again.
function quoteArg(a) {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a);
}

function replicasOf(fn) {
  let s = `${fn.availableReplicas || 0} / ${fn.replicas || 0}`;
  if (fn.startingReplicas) s += ` (${fn.startingReplicas} starting)`;
  return s;
}

function failing(fn) {
  return statusOf(fn) === 'failing' && fn.lastError;
}

function newRow(name) {
  const nameButton = el('button', { type: 'button', class: 'link fn-name' }, name);
  nameButton.addEventListener('click', () => select(name));
  const c = {
    name: el('td', { class: 'fn' }),
    status: el('td'),
    replicas: el('td', { class: 'num' }),
    rate: el('td', { class: 'num' }),
    latency: el('td', { class: 'num latency' }),
    cold: el('td', { class: 'num cold' }),
    cpu: el('td', { class: 'num cpu' }),
    mem: el('td', { class: 'num mem' }),
    invocations: el('td', { class: 'num invocations' }),
    queued: el('td', { class: 'num queued' }),
  };
  const row = {
    statusBadge: el('span', { class: 'status' }),
    source: el('span', { class: 'tag' }),
    runs: el('code', { class: 'runs' }),
    error: el('div', { class: 'fn-error error-text', hidden: '' }),
    replicasText: el('span', { class: 'replicas' }),
    replicasSpark: svg('svg', { class: 'spark spark-replicas' }),
    rateText: el('span', { class: 'rate' }),
    rateSpark: svg('svg', { class: 'spark spark-rate' }),
    cells: c,
  };
  c.name.append(el('div', {}, nameButton, ' ', row.source), row.runs, row.error);
  c.status.append(row.statusBadge);
  c.replicas.append(row.replicasText, row.replicasSpark);
  c.rate.append(row.rateText, row.rateSpark);
  row.tr = el('tr', { 'data-fn': name }, ...Object.values(c));
  return row;
}

// sparkWindow is the overview's time window, on the daemon's clock.
function sparkWindow() {
  const t1 = state.now || Date.now();
  return { t0: t1 - SPARK_TICKS * state.interval * 1000, t1 };
}

function renderSparks(row, name) {
  const { samples } = historyOf(name);
  const { t0, t1 } = sparkWindow();
  let peakReplicas = 1;
  let peakRate = 0;
  for (const s of samples) {
    peakReplicas = Math.max(peakReplicas, s.desired, s.ready);
    peakRate = Math.max(peakRate, s.rps);
  }
  sparkline(row.replicasSpark, {
    ...SPARK, t0, t1, max: peakReplicas,
    label: `replicas over the last ${Math.round((t1 - t0) / 60000)} minutes, up to ${peakReplicas}`,
    series: [
      { points: samples.map((s) => [s.time, s.ready]), kind: 'steparea', cls: 's-ready' },
      { points: samples.map((s) => [s.time, s.desired]), kind: 'step', cls: 's-desired' },
    ],
  });
  sparkline(row.rateSpark, {
    ...SPARK, t0, t1, max: niceMax(peakRate),
    label: `requests per second over the last ${Math.round((t1 - t0) / 60000)} minutes, up to ${fmtRate(peakRate)}`,
    series: [{ points: samples.map((s) => [s.time, s.rps]), kind: 'area', cls: 's-rate' }],
  });
}

function renderTable(fns) {
  const tbody = document.querySelector('#functions tbody');
  const names = new Set();
  fns.forEach((fn, i) => {
    names.add(fn.name);
    let row = state.rows.get(fn.name);
    if (!row) {
      row = newRow(fn.name);
      state.rows.set(fn.name, row);
    }
    // Rows move only when out of place, so a click in progress is not lost to a refresh.
    if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] || null);
    const st = statusOf(fn);
    setText(row.statusBadge, st);
    row.statusBadge.className = 'status status-' + st.replace(/\s+/g, '-');
    row.statusBadge.title = fn.lastError ? `last error: ${fn.lastError}` : '';
    setText(row.source, fn.source || '');
    row.source.title = fn.source === 'file' ? 'defined in faasd.toml' : 'deployed through the API';
    setText(row.runs, runsOf(fn));
    setText(row.error, failing(fn) ? fn.lastError : '');
    row.error.title = fn.lastError || '';
    show(row.error, !!failing(fn));
    const c = row.cells;
    setText(row.replicasText, replicasOf(fn));
    const last = lastSample(fn.name);
    setText(row.rateText, last ? fmtRate(last.rps) : '—');
    setText(c.latency, latencyText(fn.name));
    setText(c.cold, String(fn.coldStarts || 0));
    setText(c.cpu, fmtCPU(fn.usage?.cpu));
    setText(c.mem, fmtBytes(fn.usage?.totalMemoryBytes));
    setText(c.invocations, String(Math.round(fn.invocationCount || 0)));
    const q = state.queued.get(fn.name);
    setText(c.queued, String(q ? q.depth : 0));
    c.queued.title = q && q.oldestSeconds ? `oldest waiting ${Math.round(q.oldestSeconds)} s` : '';
    renderSparks(row, fn.name);
    row.tr.classList.toggle('selected', fn.name === state.selected);
    row.tr.classList.toggle('failing', !!failing(fn));
  });
  for (const [name, row] of state.rows) {
    if (!names.has(name)) {
      row.tr.remove();
      state.rows.delete(name);
    }
  }
  show($('empty'), fns.length === 0);
  show($('loading'), false);
}

// daemonInfo is /system/info: the queue's counts and the state of the configuration
// file. Without it the table still shows.
async function daemonInfo() {
  try {
    return await (await api('GET', '/system/info')).json();
  } catch {
    return {};
  }
}

// renderConfig warns while the daemon runs an older configuration than the file on disk:
// an edit it refused to load, with every error of the file.
function renderConfig(config) {
  const e = config && config.reloadError;
  const node = $('config-warning');
  if (!e) {
    show(node, false);
    return;
  }
  const loaded = config.loadedAt ? ` and runs it as loaded at ${new Date(config.loadedAt).toLocaleString()}` : '';
  setText(node, `The daemon refused to reload ${e.file} at ${new Date(e.time).toLocaleString()}${loaded}:\n${e.error}`);
  show(node, true);
}

async function refresh() {
  try {
    const [fnsRes, histRes, info] = await Promise.all([
      api('GET', '/system/functions'),
      api('GET', `/system/history?since=${state.seq}`),
      daemonInfo(),
    ]);
    const fns = await fnsRes.json();
    mergeHistory(await histRes.json());
    state.queued = new Map(((info.queue && info.queue.functions) || []).map((q) => [q.name, q]));
    renderConfig(info.config);
    fns.sort((a, b) => a.name.localeCompare(b.name));
    state.functions = new Map(fns.map((fn) => [fn.name, fn]));
    state.loaded = true;
    showError($('banner'), null);
    renderTable(fns);
    if (state.pendingSelect !== null) {
      const name = state.pendingSelect;
      state.pendingSelect = null;
      select(name);
    }
    renderDetail();
    renderSecrets();
    setText($('updated'), `updated ${new Date().toLocaleTimeString()}`);
  } catch (err) {
    showError($('banner'), err);
  }
}

// The next refresh is scheduled once this one has finished, so a slow daemon is never
// sent a queue of them. A page in a background tab does not poll, so an open tab costs
// the daemon nothing; it catches up when shown again.
async function refreshLoop() {
  const started = performance.now();
  if (!document.hidden) await refresh();
  setTimeout(refreshLoop, Math.max(200, REFRESH_MS - (performance.now() - started)));
}

// ---- one function ----

function functionHash(name) {
  return '#/functions/' + encodeURIComponent(name);
}

function select(name) {
  if (location.hash !== functionHash(name)) history.pushState(null, '', functionHash(name));
  // Back from the secrets, the functions are where they were left.
  $('nav-functions').setAttribute('href', functionHash(name));
  if (state.selected === name) return;
  stopFollow();
  state.selected = name;
  state.detailKey = '';
  state.revealed.clear();
  state.logInstances.clear();
  show($('notice'), false);
  setText($('detail-title'), name);
  for (const id of ['detail-error', 'invoke-result']) show($(id), false);
  for (const id of ['scale-result', 'logs-state', 'logs-output']) setText($(id), '');
  $('invoke-body').value = '';
  $('invoke-path').value = '';
  $('logs-instance').value = '';
  const fn = state.functions.get(name);
  $('scale-replicas').value = fn ? String(fn.replicas || 0) : '';
  renderDetail();
  for (const [n, row] of state.rows) row.tr.classList.toggle('selected', n === name);
  show($('detail'), true);
  $('detail').scrollIntoView({ block: 'nearest' });
}

function closeDetail() {
  stopFollow();
  state.selected = null;
  state.nearest = null;
  show($('detail'), false);
  for (const row of state.rows.values()) row.tr.classList.remove('selected');
  $('nav-functions').setAttribute('href', '#/');
  if (location.hash.startsWith('#/functions/')) history.pushState(null, '', '#/');
}

function mapList(m, mask) {
  const keys = Object.keys(m || {}).sort();
  if (keys.length === 0) return null;
  return el('ul', { class: 'kv' }, ...keys.map((k) => el('li', {}, el('code', {}, k), ' = ', mask && SECRET_ENV.test(k) ? masked(k, m[k]) : el('code', {}, m[k]))));
}

// masked shows a value whose name says it is a secret as dots until clicked.
function masked(name, value) {
  const b = el('button', { type: 'button', class: 'masked', 'data-env': name });
  const render = () => {
    const shown = state.revealed.has(name);
    setText(b, shown ? value : '••••••••');
    b.title = shown ? 'click to hide' : 'click to show';
    b.classList.toggle('revealed', shown);
  };
  b.addEventListener('click', () => {
    if (state.revealed.has(name)) state.revealed.delete(name);
    else state.revealed.add(name);
    render();
  });
  render();
  return b;
}

function field(dl, term, value) {
  if (value === null || value === undefined || value === '') return;
  dl.append(el('dt', {}, term), el('dd', {}, value));
}

// The parts of a status that change with every request; the details below the chart
// are rebuilt only when something else changes, so that text being selected or a value
// being shown stays as it is.
const LIVE_FIELDS = new Set(['invocationCount', 'availableReplicas', 'replicas', 'startingReplicas', 'status',
  'failures', 'lastError', 'coldStarts', 'instances', 'usage']);

function renderDetail() {
  const name = state.selected;
  if (name === null) return;
  const fn = state.functions.get(name);
  if (!fn) {
    if (!state.loaded) return;
    closeDetail();
    setText($('notice'), `${name} is no longer listed: it was removed.`);
    show($('notice'), true);
    return;
  }
  renderLive(fn);
  const key = JSON.stringify(fn, function (k, v) {
    return this === fn && LIVE_FIELDS.has(k) ? undefined : v;
  });
  if (key === state.detailKey) return;
  state.detailKey = key;
  const dl = $('detail-fields');
  dl.replaceChildren();
  field(dl, 'Source', fn.source === 'file' ? 'file (faasd.toml)' : fn.source);
  field(dl, 'Process (fprocess)', fn.envProcess ? el('code', {}, fn.envProcess) : null);
  field(dl, 'Command', fn.command && fn.command.length ? el('code', {}, runsOf(fn)) : null);
  field(dl, 'Workdir', fn.workdir);
  field(dl, 'User', fn.user);
  field(dl, 'Image', fn.image);
  field(dl, 'Environment', mapList(fn.envVars, true));
  field(dl, 'Labels', mapList(fn.labels));
  field(dl, 'Annotations', mapList(fn.annotations));
  field(dl, 'Secrets', fn.secrets && fn.secrets.length ? fn.secrets.join(', ') : null);
  field(dl, 'Created', fn.createdAt && !fn.createdAt.startsWith('0001-') ? new Date(fn.createdAt).toLocaleString() : null);
  const del = $('delete-fn');
  del.disabled = fn.source === 'file';
  del.title = del.disabled ? 'defined in faasd.toml: remove it there' : '';
}

// renderLive updates what moves: the numbers, the chart, the replicas.
function renderLive(fn) {
  const st = statusOf(fn);
  const badge = $('detail-status');
  setText(badge, st);
  badge.className = 'status status-' + st.replace(/\s+/g, '-');
  const failingText = fn.lastError && (st === 'failing' || fn.failures)
    ? `${st === 'failing' ? 'Failing' : 'Last failure'}${fn.failures ? ` (${fn.failures} in a row)` : ''}: ${fn.lastError}` : '';
  setText($('detail-failing'), failingText);
  show($('detail-failing'), !!failingText);
  const last = lastSample(fn.name);
  setText($('stat-replicas'), `${fn.availableReplicas || 0} ready of ${fn.replicas || 0} desired` +
    (fn.startingReplicas ? `, ${fn.startingReplicas} starting` : ''));
  setText($('stat-rate'), last ? fmtRate(last.rps) : '—');
  setText($('stat-inflight'), last ? String(last.inFlight) : '—');
  setText($('stat-latency'), latencyText(fn.name));
  setText($('stat-cold'), String(fn.coldStarts || 0));
  setText($('stat-cpu'), fmtCPU(fn.usage?.cpu));
  setText($('stat-mem'), fmtBytes(fn.usage?.totalMemoryBytes));
  setText($('stat-invocations'), String(Math.round(fn.invocationCount || 0)));
  renderChart(fn.name);
  renderReplicas(fn);
}

const PANELS = [
  { id: 'rate', title: 'requests/s', height: 110, format: fmtRate,
    series: [{ key: 'rps', kind: 'area', label: 'rate' }] },
  { id: 'replicas', title: 'replicas', height: 90, integer: true, min: 1, format: (v) => String(Math.round(v * 10) / 10),
    series: [{ key: 'ready', kind: 'steparea', label: 'ready' }, { key: 'desired', kind: 'step', label: 'desired' }] },
  { id: 'latency', title: 'latency (log scale)', height: 90, min: 0.001, log: 0.0001, format: fmtSeconds,
    series: [{ key: 'p99', kind: 'line', label: 'p99', gaps: true }, { key: 'p50', kind: 'line', label: 'p50', gaps: true }] },
];

function renderChart(name) {
  const box = $('chart');
  const { samples, changes } = historyOf(name);
  const span = Number($('chart-window').value) * 1000;
  const t1 = state.now || Date.now();
  const t0 = t1 - span;
  const width = Math.max(320, box.clientWidth || 900);
  show($('chart-empty'), samples.length === 0);
  state.nearest = chart(box, { width, t0, t1, samples, changes, panels: PANELS, formatTime: fmtClock });
  updateReadout();
  const list = $('decisions');
  const recent = changes.filter((c) => c.time >= t0).slice(-12).reverse();
  list.replaceChildren(...recent.map((c) => el('li', { class: `change change-${changeKind(c)}`, 'data-reason': c.reason },
    el('span', { class: 'when' }, fmtClock(c.time)), ' ', el('strong', {}, changeLabel(c)), ' ',
    el('span', { class: 'muted' }, `${c.from} → ${c.to}, ${c.reason}`))));
}

function updateReadout() {
  const out = $('chart-readout');
  const s = state.nearest && state.pointerX !== null ? state.nearest(state.pointerX) : null;
  if (!s) {
    setText(out, '');
    return;
  }
  let text = `${fmtClock(s.time)} · ${fmtRate(s.rps)} req/s · ${s.ready} ready of ${s.desired} · ${s.inFlight} in flight`;
  if (s.p50) text += ` · p50 ${fmtSeconds(s.p50)} · p99 ${fmtSeconds(s.p99)}`;
  if (s.coldStarts) text += ` · ${s.coldStarts} cold`;
  setText(out, text);
}

function renderReplicas(fn) {
  const tbody = document.querySelector('#replicas tbody');
  const list = fn.instances || [];
  const now = Date.now();
  const rows = list.map((r) => el('tr', { 'data-replica': r.id },
    el('td', {}, r.id),
    el('td', { class: 'num' }, r.pid ? String(r.pid) : '—'),
    el('td', { class: 'num' }, String(r.port)),
    el('td', {}, el('span', { class: 'status status-' + r.state }, r.state)),
    el('td', { class: 'num' }, fmtUptime(now - Date.parse(r.startedAt))),
    el('td', { class: 'num' }, typeof r.restarts === 'number' ? String(r.restarts) : '—'),
    el('td', { class: 'num' }, String(r.inFlight || 0)),
    el('td', { class: 'num' }, fmtCPU(r.usage?.cpu)),
    el('td', { class: 'num' }, fmtBytes(r.usage?.totalMemoryBytes))));
  tbody.replaceChildren(...rows);
  show($('replicas-empty'), list.length === 0);
  renderInstanceChoices(list.map((r) => r.id));
}

// The logs' replica filter offers the replicas running now and those seen in the logs:
// the lines of a replica that has gone are still in the buffer.
function renderInstanceChoices(running) {
  const select = $('logs-instance');
  const ids = new Set([...running, ...state.logInstances]);
  if (select.value) ids.add(select.value);
  const want = ['', ...[...ids].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b))];
  const have = [...select.options].map((o) => o.value);
  if (want.join('\n') === have.join('\n')) return;
  const value = select.value;
  select.replaceChildren(...want.map((id) => el('option', { value: id }, id === '' ? 'all' : id)));
  select.value = value;
}

async function invoke(ev) {
  ev.preventDefault();
  const name = state.selected;
  const method = $('invoke-method').value;
  let path = $('invoke-path').value.trim();
  if (path && !path.startsWith('/') && !path.startsWith('?')) path = '/' + path;
  const init = {
    method,
    cache: 'no-store',
    // /function/ is open: the admin's credentials are no business of the function.
    credentials: 'omit',
    headers: {},
  };
  if (method !== 'GET') {
    init.body = $('invoke-body').value;
    const type = $('invoke-type').value.trim();
    if (type) init.headers['Content-Type'] = type;
  }
  const button = $('invoke-submit');
  button.disabled = true;
  const status = $('invoke-status');
  const headers = $('invoke-headers');
  const output = $('invoke-output');
  result(status, `${method} /function/${name}${path} …`);
  headers.replaceChildren();
  setText(output, '');
  show($('invoke-result'), true);
  const started = performance.now();
  try {
    const res = await fetch(url(`/function/${encodeURIComponent(name)}${path}`), init);
    let body = await res.text();
    if (state.selected !== name) return;
    const ms = Math.round(performance.now() - started);
    result(status, `${res.status} ${res.statusText} · ${ms} ms` + (res.redirected ? ` · redirected to ${res.url}` : ''), res.ok ? 'ok' : 'error');
    for (const h of ['X-Call-Id', 'X-Faasd-Cold-Start', 'X-Duration-Seconds', 'Content-Type']) {
      const v = res.headers.get(h);
      if (v !== null) headers.append(el('dt', {}, h), el('dd', {}, el('code', {}, v)));
    }
    if (body.length > MAX_BODY_CHARS) {
      body = body.slice(0, MAX_BODY_CHARS) + `\n… (${body.length - MAX_BODY_CHARS} more characters not shown)`;
    }
    setText(output, body);
  } catch (err) {
    result(status, `request failed: ${err.message}`, 'error');
  } finally {
    button.disabled = false;
  }
}

async function scale(ev) {
  ev.preventDefault();
  const name = state.selected;
  const n = Number($('scale-replicas').value);
  const out = $('scale-result');
  result(out, 'scaling…');
  try {
    await api('POST', `/system/scale-function/${encodeURIComponent(name)}`, { serviceName: name, replicas: n });
    result(out, `asked for ${n} replica${n === 1 ? '' : 's'}`, 'ok');
    refresh();
  } catch (err) {
    result(out, err.message, 'error');
  }
}

async function deleteFunction() {
  const name = state.selected;
  if (!confirm(`Delete the function ${name}? Its replicas stop and its deployment is removed.`)) return;
  try {
    await api('DELETE', '/system/functions', { functionName: name });
    closeDetail();
    refresh();
  } catch (err) {
    showError($('detail-error'), err);
  }
}

// ---- deploy ----

// splitArgs splits a command line into argv the way a shell would, without running
// one: spaces separate, quotes group, a backslash escapes the next character (but not
// inside single quotes).
function splitArgs(line) {
  const out = [];
  let cur = '';
  let has = false;
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote === "'") {
      if (ch === "'") quote = '';
      else cur += ch;
    } else if (ch === '\\' && i + 1 < line.length && (quote === '' || '"\\$`'.includes(line[i + 1]))) {
      cur += line[++i];
      has = true;
    } else if (quote === '"') {
      if (ch === '"') quote = '';
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      has = true;
    } else if (/\s/.test(ch)) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (quote) throw new Error(`command: the ${quote === '"' ? 'double' : 'single'} quote is not closed`);
  if (has) out.push(cur);
  return out;
}

// parsePairs reads NAME=value lines; blank lines are skipped.
function parsePairs(text, what) {
  const out = {};
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const eq = line.indexOf('=');
    const key = eq < 0 ? '' : line.slice(0, eq).trim();
    if (!key) throw new Error(`${what}, line ${i + 1}: want NAME=value, got ${JSON.stringify(line)}`);
    out[key] = line.slice(eq + 1);
  });
  return out;
}

function deployKind() {
  return $('deploy-kind-http').checked ? 'http' : 'classic';
}

function renderDeployKind() {
  const http = deployKind() === 'http';
  for (const e of document.querySelectorAll('.kind-http')) show(e, http);
  for (const e of document.querySelectorAll('.kind-classic')) show(e, !http);
  // A hidden field must not block the form.
  $('deploy-command').required = http;
  $('deploy-process').required = !http;
  renderArgv();
}

function renderArgv() {
  const out = $('deploy-argv');
  const line = $('deploy-command').value;
  if (!line.trim()) {
    setText(out, 'Runs without a shell: quotes group words, as in a shell.');
    return;
  }
  try {
    setText(out, 'argv: ' + JSON.stringify(splitArgs(line)));
    out.className = 'muted kind-http';
  } catch (err) {
    setText(out, err.message);
    out.className = 'error-text kind-http';
  }
}

function renderSecretChoices() {
  const box = $('deploy-secrets');
  const checked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
  const have = [...box.querySelectorAll('input')].map((i) => i.value);
  if (have.join('\n') !== state.secrets.join('\n')) {
    for (const l of box.querySelectorAll('label')) l.remove();
    for (const name of state.secrets) {
      const input = el('input', { type: 'checkbox', value: name, 'data-secret': name });
      input.checked = checked.has(name);
      box.append(el('label', { class: 'check' }, input, ' ', name));
    }
  }
  show($('deploy-no-secrets'), state.secrets.length === 0);
}

async function deploy(ev) {
  ev.preventDefault();
  const service = $('deploy-service').value.trim();
  const out = $('deploy-result');
  let body;
  try {
    body = { service, image: $('deploy-image').value.trim() };
    const env = parsePairs($('deploy-env').value, 'environment');
    const labels = parsePairs($('deploy-labels').value, 'labels');
    if (Object.keys(env).length) body.envVars = env;
    if (Object.keys(labels).length) body.labels = labels;
    const secrets = [...$('deploy-secrets').querySelectorAll('input:checked')].map((i) => i.value);
    if (secrets.length) body.secrets = secrets;
    if (deployKind() === 'http') {
      body.command = splitArgs($('deploy-command').value);
      if (body.command.length === 0) throw new Error('command: empty');
      const workdir = $('deploy-workdir').value.trim();
      const user = $('deploy-user').value.trim();
      if (workdir) body.workdir = workdir;
      if (user) body.user = user;
    } else {
      body.envProcess = $('deploy-process').value.trim();
    }
  } catch (err) {
    result(out, err.message, 'error');
    return;
  }
  result(out, `deploying ${service}…`);
  try {
    await api('POST', '/system/functions', body);
    result(out, `deployed ${service}: its replica is starting`, 'ok');
    $('deploy-form').reset();
    renderDeployKind();
    refresh();
  } catch (err) {
    result(out, err.message, 'error');
  }
}

// ---- secrets ----

async function loadSecrets() {
  try {
    const list = await (await api('GET', '/system/secrets')).json();
    state.secrets = list.map((s) => s.name).sort();
    state.secretsLoaded = true;
    renderSecrets();
    renderSecretChoices();
  } catch (err) {
    result($('secrets-result'), err.message, 'error');
  }
}

function usersOf(secret) {
  const out = [];
  for (const fn of state.functions.values()) {
    if ((fn.secrets || []).includes(secret)) out.push(fn.name);
  }
  return out;
}

function renderSecrets() {
  if (!state.secretsLoaded) return;
  const tbody = document.querySelector('#secrets tbody');
  const existing = new Map([...tbody.children].map((tr) => [tr.dataset.secret, tr]));
  const rows = state.secrets.map((name) => {
    let tr = existing.get(name);
    if (!tr) tr = newSecretRow(name);
    setText(tr.querySelector('.used-by'), usersOf(name).join(', ') || '—');
    return tr;
  });
  // Rows in an update are kept as they are: the value being typed must not vanish.
  if (rows.length !== tbody.children.length || rows.some((tr, i) => tbody.children[i] !== tr)) tbody.replaceChildren(...rows);
  show($('secrets-empty'), state.secrets.length === 0);
}

function newSecretRow(name) {
  const update = el('button', { type: 'button', class: 'secret-update' }, 'Update…');
  const remove = el('button', { type: 'button', class: 'danger secret-remove' }, 'Remove…');
  const value = el('input', { type: 'password', class: 'secret-new-value', autocomplete: 'new-password', placeholder: 'new value', required: '' });
  const save = el('button', { type: 'submit', class: 'primary secret-save' }, 'Save');
  const cancel = el('button', { type: 'button', class: 'secret-cancel' }, 'Cancel');
  const form = el('form', { class: 'inline secret-edit', hidden: '' }, value, save, cancel);
  const tr = el('tr', { 'data-secret': name },
    el('td', {}, el('code', {}, name)),
    el('td', { class: 'used-by muted' }),
    el('td', { class: 'actions' }, update, remove, form));
  update.addEventListener('click', () => {
    show(form, true);
    show(update, false);
    value.focus();
  });
  cancel.addEventListener('click', () => {
    form.reset();
    show(form, false);
    show(update, true);
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('PUT', '/system/secrets', { name, value: value.value });
      form.reset();
      show(form, false);
      show(update, true);
      result($('secrets-result'), `updated ${name}: running replicas see the new value`, 'ok');
    } catch (err) {
      result($('secrets-result'), err.message, 'error');
    }
  });
  remove.addEventListener('click', async () => {
    const users = usersOf(name);
    const note = users.length ? ` ${users.join(', ')} list${users.length === 1 ? 's' : ''} it: new replicas will fail to start.` : '';
    if (!confirm(`Remove the secret ${name}?${note}`)) return;
    try {
      await api('DELETE', '/system/secrets', { name });
      result($('secrets-result'), `removed ${name}`, 'ok');
      loadSecrets();
    } catch (err) {
      result($('secrets-result'), err.message, 'error');
    }
  });
  return tr;
}

async function createSecret(ev) {
  ev.preventDefault();
  const name = $('secret-name').value.trim();
  try {
    await api('POST', '/system/secrets', { name, value: $('secret-value').value });
    $('secret-form').reset();
    result($('secrets-result'), `created ${name}`, 'ok');
    loadSecrets();
  } catch (err) {
    result($('secrets-result'), err.message, 'error');
  }
}

// ---- logs ----

function logLine(msg) {
  if (msg.instance) state.logInstances.add(msg.instance);
  // Nanoseconds are more than a reader needs.
  const ts = String(msg.timestamp || '').replace(/\.(\d{3})\d*Z$/, '.$1Z');
  return `${ts} ${msg.instance || '-'}  ${msg.text}`;
}

function parseLogLines(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(logLine(JSON.parse(line)));
    } catch {
      out.push(line);
    }
  }
  return out;
}

function logsPath(name, follow) {
  const q = new URLSearchParams({ name, tail: String(LOG_TAIL) });
  const instance = $('logs-instance').value;
  if (instance) q.set('instance', instance);
  if (follow) q.set('follow', 'true');
  return `/system/logs?${q}`;
}

function logsOf() {
  const instance = $('logs-instance').value;
  return instance ? `replica ${instance}` : 'all replicas';
}

async function loadLogs() {
  stopFollow();
  const name = state.selected;
  const out = $('logs-output');
  setText($('logs-state'), 'loading…');
  try {
    const res = await api('GET', logsPath(name, false));
    const lines = parseLogLines(await res.text());
    if (state.selected !== name) return;
    setText(out, lines.join('\n'));
    setText($('logs-state'), lines.length ? `last ${lines.length} lines of ${logsOf()}` : `no lines yet from ${logsOf()}`);
    out.scrollTop = out.scrollHeight;
  } catch (err) {
    setText($('logs-state'), err.message);
  }
}

// followLogs streams new lines with fetch and a reader until stopped or the daemon ends
// the stream.
async function followLogs() {
  stopFollow();
  const name = state.selected;
  const ctl = new AbortController();
  state.follow = ctl;
  $('logs-follow').checked = true;
  const out = $('logs-output');
  const lines = [];
  setText(out, '');
  setText($('logs-state'), 'following…');
  try {
    const res = await api('GET', logsPath(name, true), undefined, ctl.signal);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let partial = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      partial += decoder.decode(value, { stream: true });
      const cut = partial.lastIndexOf('\n');
      if (cut < 0) continue;
      lines.push(...parseLogLines(partial.slice(0, cut)));
      partial = partial.slice(cut + 1);
      if (lines.length > MAX_LOG_LINES) lines.splice(0, lines.length - MAX_LOG_LINES);
      const atBottom = out.scrollHeight - out.scrollTop - out.clientHeight < 20;
      setText(out, lines.join('\n'));
      if (atBottom) out.scrollTop = out.scrollHeight;
    }
    if (state.follow === ctl) setText($('logs-state'), 'the stream ended');
  } catch (err) {
    if (err.name !== 'AbortError') setText($('logs-state'), err.message);
  } finally {
    if (state.follow === ctl) {
      state.follow = null;
      $('logs-follow').checked = false;
    }
  }
}

function stopFollow() {
  if (state.follow) {
    state.follow.abort();
    state.follow = null;
    setText($('logs-state'), '');
  }
  $('logs-follow').checked = false;
}

function changeInstance() {
  if (state.follow) followLogs();
  else loadLogs();
}

// ---- navigation ----

// route shows what the address names: #/ the functions, #/functions/NAME one of them
// below the list, #/secrets the secrets.
function route() {
  const h = location.hash || '#/';
  const secrets = h.startsWith('#/secrets');
  show($('view-functions'), !secrets);
  show($('view-secrets'), secrets);
  $('nav-functions').classList.toggle('current', !secrets);
  $('nav-secrets').classList.toggle('current', secrets);
  if (secrets) {
    loadSecrets();
    return;
  }
  const m = h.match(/^#\/functions\/(.+)$/);
  if (!m) {
    if (state.selected !== null) closeDetail();
    return;
  }
  const name = decodeURIComponent(m[1]);
  if (!state.loaded) state.pendingSelect = name;
  else select(name);
}

// ---- start ----

async function showVersion() {
  try {
    const info = await (await api('GET', '/system/info')).json();
    const v = (info.provider && info.provider.version) || info.version || {};
    setText($('version'), `version ${v.release || '?'} · commit ${v.sha || '?'}`);
  } catch {
    // The table's refresh reports what is wrong with the API.
  }
}

function start() {
  $('invoke-form').addEventListener('submit', invoke);
  $('scale-form').addEventListener('submit', scale);
  $('deploy-form').addEventListener('submit', deploy);
  $('secret-form').addEventListener('submit', createSecret);
  $('delete-fn').addEventListener('click', deleteFunction);
  $('close-detail').addEventListener('click', closeDetail);
  $('logs-load').addEventListener('click', loadLogs);
  $('logs-follow').addEventListener('change', (ev) => (ev.target.checked ? followLogs() : stopFollow()));
  $('logs-instance').addEventListener('change', changeInstance);
  for (const id of ['deploy-kind-classic', 'deploy-kind-http']) $(id).addEventListener('change', renderDeployKind);
  $('deploy-command').addEventListener('input', renderArgv);
  $('chart-window').addEventListener('change', () => state.selected && renderChart(state.selected));
  const box = $('chart');
  box.addEventListener('pointermove', (ev) => {
    state.pointerX = ev.clientX;
    updateReadout();
  });
  box.addEventListener('pointerleave', () => {
    state.pointerX = null;
    updateReadout();
  });
  let resizing = false;
  window.addEventListener('resize', () => {
    if (resizing) return;
    resizing = true;
    requestAnimationFrame(() => {
      resizing = false;
      if (state.selected) renderChart(state.selected);
    });
  });
  window.addEventListener('popstate', route);
  window.addEventListener('hashchange', route);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) refresh();
  });
  renderDeployKind();
  route();
  loadSecrets();
  showVersion();
  refreshLoop();
}

start();
