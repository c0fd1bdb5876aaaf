// The faasd web UI: a client of the OpenFaaS /system API, like faas-cli. It renders only
// through textContent and DOM nodes, never through HTML strings, because function
// metadata and log lines are whatever their authors wrote.
'use strict';

const REFRESH_MS = 2000;
const LOG_TAIL = 100;
const MAX_LOG_LINES = 1000;
const MAX_BODY_CHARS = 256 * 1024;

const state = {
  functions: new Map(), // name -> FunctionStatus, as last listed
  rows: new Map(), // name -> {tr, cells}
  queued: new Map(), // name -> QueueFunction of /system/info: asynchronous calls
  selected: null,
  detailKey: '',
  follow: null, // AbortController of the log stream being followed
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
async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers: { [API_HEADER]: '1' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url(path), init);
  } catch (err) {
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

function newRow(name) {
  const nameButton = el('button', { type: 'button', class: 'link fn-name' }, name);
  nameButton.addEventListener('click', () => select(name));
  const cells = {
    source: el('td'),
    status: el('td'),
    replicas: el('td', { class: 'num replicas' }),
    invocations: el('td', { class: 'num invocations' }),
    queued: el('td', { class: 'num queued' }),
    runs: el('td', { class: 'runs' }),
  };
  const statusBadge = el('span', { class: 'status' });
  cells.status.append(statusBadge);
  const runsCode = el('code');
  const image = el('span', { class: 'muted image' });
  cells.runs.append(runsCode, image);
  const tr = el('tr', { 'data-fn': name }, el('td', {}, nameButton),
    cells.source, cells.status, cells.replicas, cells.invocations, cells.queued, cells.runs);
  return { tr, cells, statusBadge, runsCode, image };
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
    setText(row.cells.source, fn.source || '');
    setText(row.statusBadge, st);
    row.statusBadge.className = 'status status-' + st.replace(/\s+/g, '-');
    row.statusBadge.title = fn.lastError ? `last error: ${fn.lastError}` : '';
    setText(row.cells.replicas, replicasOf(fn));
    setText(row.cells.invocations, String(Math.round(fn.invocationCount || 0)));
    const q = state.queued.get(fn.name);
    setText(row.cells.queued, String(q ? q.depth : 0));
    row.cells.queued.title = q && q.oldestSeconds ? `oldest waiting ${Math.round(q.oldestSeconds)} s` : '';
    setText(row.runsCode, runsOf(fn));
    setText(row.image, fn.image ? ` ${fn.image}` : '');
    row.tr.classList.toggle('selected', fn.name === state.selected);
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

// queueInfo is the queue's part of /system/info; without it the table still shows.
async function queueInfo() {
  try {
    return (await (await api('GET', '/system/info')).json()).queue;
  } catch {
    return null;
  }
}

async function refresh() {
  try {
    const [res, queue] = await Promise.all([api('GET', '/system/functions'), queueInfo()]);
    const fns = await res.json();
    state.queued = new Map(((queue && queue.functions) || []).map((q) => [q.name, q]));
    fns.sort((a, b) => a.name.localeCompare(b.name));
    state.functions = new Map(fns.map((fn) => [fn.name, fn]));
    showError($('banner'), null);
    renderTable(fns);
    renderDetail();
    setText($('updated'), `updated ${new Date().toLocaleTimeString()}`);
  } catch (err) {
    showError($('banner'), err);
  }
}

// The next refresh is scheduled once this one has finished, so a slow daemon is never
// sent a queue of them. A page in a background tab does not poll; it catches up when
// shown again.
async function refreshLoop() {
  if (!document.hidden) await refresh();
  setTimeout(refreshLoop, REFRESH_MS);
}

// ---- one function ----

function select(name) {
  if (state.selected === name) return;
  stopFollow();
  state.selected = name;
  state.detailKey = '';
  show($('notice'), false);
  setText($('detail-title'), name);
  for (const id of ['detail-error', 'invoke-result']) show($(id), false);
  for (const id of ['scale-result', 'logs-state', 'logs-output']) setText($(id), '');
  $('invoke-body').value = '';
  $('invoke-path').value = '';
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
  show($('detail'), false);
  for (const row of state.rows.values()) row.tr.classList.remove('selected');
}

function mapList(m) {
  const keys = Object.keys(m || {}).sort();
  if (keys.length === 0) return null;
  return el('ul', { class: 'kv' }, ...keys.map((k) => el('li', {}, el('code', {}, k), ' = ', el('code', {}, m[k]))));
}

function field(dl, term, value) {
  if (value === null || value === undefined || value === '') return;
  dl.append(el('dt', {}, term), el('dd', {}, value));
}

function renderDetail() {
  const name = state.selected;
  if (name === null) return;
  const fn = state.functions.get(name);
  if (!fn) {
    closeDetail();
    setText($('notice'), `${name} is no longer listed: it was removed.`);
    show($('notice'), true);
    return;
  }
  // Rebuilt only when something changed, so that text being selected stays selected.
  const key = JSON.stringify(fn);
  if (key === state.detailKey) return;
  state.detailKey = key;
  const dl = $('detail-fields');
  dl.replaceChildren();
  field(dl, 'Source', fn.source === 'file' ? 'file (faasd.toml)' : fn.source);
  field(dl, 'Status', statusOf(fn) + (fn.failures ? ` (${fn.failures} failures in a row)` : ''));
  field(dl, 'Replicas', `${fn.availableReplicas || 0} ready of ${fn.replicas || 0} desired` +
    (fn.startingReplicas ? `, ${fn.startingReplicas} starting` : ''));
  field(dl, 'Invocations', String(Math.round(fn.invocationCount || 0)));
  if (fn.lastError) field(dl, 'Last error', el('span', { class: 'error-text' }, fn.lastError));
  field(dl, 'Process (fprocess)', fn.envProcess ? el('code', {}, fn.envProcess) : null);
  field(dl, 'Command', fn.command && fn.command.length ? el('code', {}, runsOf(fn)) : null);
  field(dl, 'Workdir', fn.workdir);
  field(dl, 'User', fn.user);
  field(dl, 'Image', fn.image);
  field(dl, 'Environment', mapList(fn.envVars));
  field(dl, 'Labels', mapList(fn.labels));
  field(dl, 'Annotations', mapList(fn.annotations));
  field(dl, 'Secrets', fn.secrets && fn.secrets.length ? fn.secrets.join(', ') : null);
  field(dl, 'Created', fn.createdAt && !fn.createdAt.startsWith('0001-') ? new Date(fn.createdAt).toLocaleString() : null);
  const del = $('delete-fn');
  del.disabled = fn.source === 'file';
  del.title = del.disabled ? 'defined in faasd.toml: remove it there' : '';
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
  setText(status, `${method} /function/${name}${path} …`);
  status.className = '';
  headers.replaceChildren();
  setText(output, '');
  show($('invoke-result'), true);
  const started = performance.now();
  try {
    const res = await fetch(url(`/function/${encodeURIComponent(name)}${path}`), init);
    let body = await res.text();
    if (state.selected !== name) return;
    const ms = Math.round(performance.now() - started);
    setText(status, `${res.status} ${res.statusText} · ${ms} ms` + (res.redirected ? ` · redirected to ${res.url}` : ''));
    status.className = res.ok ? 'ok' : 'error';
    for (const h of ['X-Call-Id', 'X-Faasd-Cold-Start', 'X-Duration-Seconds', 'Content-Type']) {
      const v = res.headers.get(h);
      if (v !== null) headers.append(el('dt', {}, h), el('dd', {}, el('code', {}, v)));
    }
    if (body.length > MAX_BODY_CHARS) {
      body = body.slice(0, MAX_BODY_CHARS) + `\n… (${body.length - MAX_BODY_CHARS} more characters not shown)`;
    }
    setText(output, body);
  } catch (err) {
    setText(status, `request failed: ${err.message}`);
    status.className = 'error';
  } finally {
    button.disabled = false;
  }
}

async function scale(ev) {
  ev.preventDefault();
  const name = state.selected;
  const n = Number($('scale-replicas').value);
  const out = $('scale-result');
  out.className = '';
  setText(out, 'scaling…');
  try {
    await api('POST', `/system/scale-function/${encodeURIComponent(name)}`, { serviceName: name, replicas: n });
    setText(out, `asked for ${n} replica${n === 1 ? '' : 's'}`);
    out.className = 'ok';
    refresh();
  } catch (err) {
    setText(out, err.message);
    out.className = 'error';
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

async function deploy(ev) {
  ev.preventDefault();
  const service = $('deploy-service').value.trim();
  const out = $('deploy-result');
  const body = { service, envProcess: $('deploy-process').value.trim(), image: $('deploy-image').value.trim() };
  out.className = '';
  setText(out, `deploying ${service}…`);
  try {
    await api('POST', '/system/functions', body);
    setText(out, `deployed ${service}: its replica is starting`);
    out.className = 'ok';
    $('deploy-form').reset();
    refresh();
  } catch (err) {
    setText(out, err.message);
    out.className = 'error';
  }
}

// ---- logs ----

function logLine(msg) {
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
  if (follow) q.set('follow', 'true');
  return `/system/logs?${q}`;
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
    setText($('logs-state'), lines.length ? `last ${lines.length} lines` : 'no lines yet');
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
    const res = await fetch(url(logsPath(name, true)), {
      credentials: 'same-origin', cache: 'no-store', signal: ctl.signal, headers: { [API_HEADER]: '1' },
    });
    if (!res.ok) throw new APIError('GET', '/system/logs', res.status, (await res.text()).trim());
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
  $('delete-fn').addEventListener('click', deleteFunction);
  $('close-detail').addEventListener('click', closeDetail);
  $('logs-load').addEventListener('click', loadLogs);
  $('logs-follow').addEventListener('change', (ev) => (ev.target.checked ? followLogs() : stopFollow()));
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) refresh();
  });
  showVersion();
  refreshLoop();
}

start();
